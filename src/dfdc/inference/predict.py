"""The one inference path: video -> frames -> faces -> crops -> crop scores -> video score.

``dfdc predict``, the ensemble stage's test predictions, the Kaggle kernel and the benchmarks
all get their models through :func:`load_bundle` (an ensemble, the checkpoints of its runs,
one device for weights and inputs, the frame rule and the face settings) and score through
:meth:`Predictor.predict_video`. Crops are made by the faces stage's own :func:`extract_video`
with the face settings saved in the models' checkpoints, and each model's kind scores them with
the same transforms as in training, so train and test crops cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dfdc.core.config import FacesConfig, Params
from dfdc.core.layout import find_checkpoints, fold_name, fold_of, member_name
from dfdc.core.provenance import describe_training_data, sample_only, sha256_file
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video
from dfdc.inference.aggregate import video_score
from dfdc.inference.ensemble import Ensemble

log = logging.getLogger(__name__)

__all__ = [
    "ENGINES",
    "BundleActor",
    "InferenceBundle",
    "Predictor",
    "VideoPrediction",
    "bundle_from_params",
    "load_bundle",
    "resolve_engine",
]

ENGINES = ("auto", "torch", "onnx")


def _cuda_visible() -> bool:
    """Whether an NVIDIA GPU is visible, asked of the driver rather than of torch (the onnx
    engine's cold start must not import it)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def resolve_engine(engine: str, device: str = "auto", purpose: str = "score") -> str:
    """The engine ``inference.engine`` means here. ``auto`` is the faster one at equal scores:
    on a CPU the ONNX export (5x the torch path's model time, docs/inference.md), on a CUDA
    device the checkpoints with AMP (the GPU path the tests cover). A ``purpose`` of
    ``explain`` (reports with heatmaps) needs gradients, hence torch."""
    if engine not in ENGINES:
        raise ValueError(f"inference.engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    if purpose == "explain":
        return "torch"
    gpu = device.startswith("cuda") or (device == "auto" and _cuda_visible())
    return "torch" if gpu else "onnx"


def _rounded(values: np.ndarray) -> list[float]:
    """At 6 decimals, as the frame scores are printed."""
    return [round(float(x), 6) for x in np.atleast_1d(values)]


@dataclass
class VideoPrediction:
    video: str
    prob: float
    status: str  # ok | no_face | unreadable
    reason: str | None = None
    frames: list[int] = field(default_factory=list)
    tracks: list[int] = field(default_factory=list)
    # model name -> frame scores, aligned with frames/tracks
    frame_probs: dict[str, list[float]] = field(default_factory=dict)
    # model name -> its video score under the bundle's rule and faces combination (computed
    # once here; the ensemble weighs these, it does not recompute them)
    member_scores: dict[str, float] = field(default_factory=dict)
    # One score a crop, as the ensemble weighs and calibrates (no ensemble: the members' mean;
    # Ensemble.frame_scores): the one frame score the report, the page and --json show.
    frame_scores: list[float] = field(default_factory=list)
    # Each crop's face box and the square it was cut from, in full-frame upright pixels.
    boxes: list[list[float]] = field(default_factory=list)
    crop_boxes: list[list[float]] = field(default_factory=list)
    crops: list[bytes] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {
            "video": self.video,
            "prob": self.prob,
            "status": self.status,
            "reason": self.reason,
            "frames": self.frames,
            "tracks": self.tracks,
            "frame_probs": self.frame_probs,
            "member_scores": self.member_scores,
            "frame_scores": self.frame_scores,
            "boxes": self.boxes,
            "crop_boxes": self.crop_boxes,
        }


class Predictor:
    """Scores videos with an engine's models: the torch checkpoints
    (:class:`~dfdc.inference.torch_engine.TorchEngine`) or their ONNX export
    (:class:`~dfdc.inference.onnx_engine.OnnxEngine`); faces, aggregation and the ensemble are
    the same for both."""

    def __init__(
        self, engine, rule: str = "mean", faces_combine: str = "max", frames: int = 0
    ) -> None:
        self.engine = engine
        self.models = engine.models  # each with .name, .kind, .faces, .trained_on
        self.rt = getattr(engine, "rt", None)
        self.device = engine.device
        # The models' faces settings, sampling the ensemble's ``frames`` when it names a count.
        self.faces_cfg = replace(engine.faces, workers=1, frames=frames or engine.faces.frames)
        mtcnn_onnx = getattr(engine, "mtcnn_dir", None)
        runtime = getattr(engine, "runtime", "onnxruntime")
        self.detector = Detector(self.faces_cfg, self.device, mtcnn_onnx, runtime)
        self.rule, self.faces_combine = rule, faces_combine
        self.last_frames: dict[int, tuple] = {}

    def crop_probs(self, vf, share: bool = True) -> dict[str, np.ndarray]:
        """Model name -> one score per crop of ``vf`` (a :class:`VideoFaces`). Each backbone
        runs once over the crops (``share=False``: once per model, the reference)."""
        return self.engine.crop_probs(vf.crops, vf.track, vf.frame, share)

    def predict_video(self, path: str | Path) -> VideoPrediction:
        """Never raises for a bad video: an unreadable one, or one with no face, scores 0.5.
        ``prob`` is the plain mean of the models' video scores; an :class:`Ensemble` turns
        the per-model scores into the submitted probability."""
        path = Path(path)
        self.last_frames = {}  # detection frames of this video: index -> (small RGB, width)
        vf = extract_video(path, self.faces_cfg, self.detector, keep_frames=self.last_frames)
        status = vf.status["status"]
        if status != "ok":
            return VideoPrediction(path.name, 0.5, status, vf.status.get("reason"))
        # Frame scores at 6 decimals, as --json prints them: each member's video score is
        # computed from exactly these, so re-aggregating the JSON gives the same answer.
        frame_probs = {k: [round(float(x), 6) for x in v] for k, v in self.crop_probs(vf).items()}
        tracks = [int(t) for t in vf.track]
        members = {
            k: video_score(v, tracks, self.rule, self.faces_combine) for k, v in frame_probs.items()
        }
        return VideoPrediction(
            path.name,
            float(np.mean(list(members.values()))),
            "ok",
            frame_scores=_rounded(np.mean(list(frame_probs.values()), axis=0)),
            frames=[int(f) for f in vf.frame],
            tracks=tracks,
            frame_probs=frame_probs,
            member_scores=members,
            boxes=[[round(float(v), 2) for v in b] for b in vf.box],
            crop_boxes=[[round(float(v), 2) for v in b] for b in vf.crop_box],
            crops=vf.crops,
        )


@dataclass
class InferenceBundle:
    """Everything that turns a video into the submitted probability."""

    predictor: Predictor
    ensemble: Ensemble | None  # None: the models are averaged equally (``--models``)
    # load_bundle's arguments: how a Ray actor rebuilds this bundle on its own worker.
    spec: dict = field(default_factory=dict)

    @property
    def trained_on(self) -> str:
        """One line: what the models were trained on (the generated sample or which data)."""
        return describe_training_data([m.trained_on for m in self.predictor.models])

    @property
    def sample_models(self) -> bool:
        """Whether every model was trained on the generated sample only (pages warn of it)."""
        return sample_only([m.trained_on for m in self.predictor.models])

    def score(self, path: str | Path) -> VideoPrediction:
        """The video's prediction, ``prob`` under the ensemble when there is one."""
        pred = self.predictor.predict_video(path)
        if pred.status == "ok" and self.ensemble is not None:
            pred.prob = self.ensemble.prob(pred.member_scores)
            pred.frame_scores = _rounded(self.ensemble.frame_scores(pred.frame_probs))
        return pred

    def score_all(
        self, paths: list[str | Path], faces: FacesConfig | None = None, on_result=None
    ) -> list[VideoPrediction]:
        """Every video's prediction, in order: here, one after the other, or with
        ``faces.executor: ray`` on ``faces.workers`` Ray actors, each with its own copy of
        this bundle (the predictions then come back without their crops)."""
        if faces is None or faces.executor != "ray" or len(paths) <= 1:
            out = []
            for path in paths:
                out.append(self.score(path))
                if on_result is not None:
                    on_result(out[-1])
            return out
        from dfdc.core.executor import RayActors, ray_session

        workers = max(1, faces.workers)
        gpus = 1 / workers if self.predictor.device == "cuda" else 0
        with ray_session(faces.ray_address, num_cpus=workers):
            actors = RayActors(BundleActor, (self.spec,), workers, num_gpus=gpus)
            return actors.map("score", [[str(p) for p in paths]], on_result)


class BundleActor:
    """A Ray actor: its own inference bundle, rebuilt from :func:`load_bundle`'s arguments."""

    def __init__(self, spec: dict) -> None:
        import torch

        torch.set_num_threads(1)
        self.bundle = load_bundle(**spec)

    def ready(self) -> bool:
        return True

    def score(self, path: str) -> VideoPrediction:
        pred = self.bundle.score(path)
        pred.crops = []  # only the scores travel back
        return pred


def load_bundle(
    models_dir: str | Path,
    device: str = "auto",
    ensemble: Ensemble | str | Path | None = None,
    models: str | Path | None = None,
    rule: str | None = None,
    faces_combine: str | None = None,
    fold: int | None = None,
    engine: str = "torch",
    export_dir: str | Path | None = None,
    threads: int = 0,
    runtime: str = "onnxruntime",
) -> InferenceBundle:
    """The one loader of an inference bundle.

    With ``ensemble`` (an :class:`Ensemble` or its JSON file): the checkpoints of its runs
    under ``models_dir``, its rule, weights, temperature and clip. With ``models`` (a run
    folder, fold folder or ``best.pt``): those checkpoints, averaged equally. ``rule`` and
    ``faces_combine`` override the ensemble's. ``fold``: that fold's checkpoints only (they never
    trained on the fold's validation videos: how out-of-fold scores are made at inference).
    Weights and inputs share one device (``auto``: CUDA when present). ``engine``: ``torch``
    (the checkpoints) or ``onnx`` (their export in ``export_dir``, checked against the
    checkpoints where they are present: a stale export is an error, not a silent score),
    each graph run by ``runtime`` (``onnxruntime`` or ``openvino``); ``auto``
    (:func:`resolve_engine`) takes onnx on a CPU where the export holds these models, and says
    in one line when it falls back to torch.
    """
    chosen = resolve_engine(engine, device)
    if isinstance(ensemble, str | Path):
        ensemble = Ensemble.load(ensemble)
    if models is not None:
        ensemble = None
        paths = find_checkpoints(models)
    elif ensemble is not None:
        paths = [
            c
            for run in ensemble.runs
            if (Path(models_dir) / run).exists() or chosen == "torch"
            for c in find_checkpoints(Path(models_dir) / run)
        ]
    else:
        raise ValueError("load_bundle needs an ensemble or a models folder")
    if fold is not None:
        paths = [p for p in paths if p.parent.name == fold_name(fold)]
        if not paths and chosen == "torch":
            raise FileNotFoundError(f"{models_dir}: no {fold_name(fold)}/best.pt for fold {fold}")
    loaded = None
    if chosen == "onnx":
        from dfdc.inference.onnx_engine import ExportError

        try:
            loaded = _onnx_engine(export_dir, paths, ensemble, fold, device, threads, runtime)
        except (FileNotFoundError, ExportError) as exc:
            if engine != "auto" or not paths:
                raise
            print(f"inference.engine auto: {exc}; scoring with torch", file=sys.stderr)
            chosen = "torch"
    if loaded is None:
        from dfdc.inference.torch_engine import TorchEngine

        loaded = TorchEngine.load(paths, device)
    if ensemble is not None:
        ensemble = replace(
            ensemble,
            rule=rule or ensemble.rule,
            faces_combine=faces_combine or ensemble.faces_combine,
        )
        rule, faces_combine = ensemble.rule, ensemble.faces_combine
    predictor = Predictor(loaded, rule=rule or "mean", faces_combine=faces_combine or "max",
                          frames=ensemble.frames if ensemble is not None else 0)  # fmt: skip
    spec = {"models_dir": str(models_dir), "device": device, "ensemble": ensemble,
            "models": None if models is None else str(models), "fold": fold,
            "rule": rule, "faces_combine": faces_combine, "engine": chosen,
            "export_dir": None if export_dir is None else str(export_dir),
            "threads": threads, "runtime": runtime}  # fmt: skip
    return InferenceBundle(predictor, ensemble, spec)


def _onnx_engine(
    export_dir: str | Path | None,
    paths: list[Path],
    ensemble: Ensemble | None,
    fold: int | None,
    device: str,
    threads: int,
    runtime: str,
):
    """The ONNX engine over the members ``paths`` name (or, with no checkpoints beside the
    export, as in a packaged kernel, the ensemble's runs in the export)."""
    from dfdc.inference.onnx_engine import ExportError, OnnxEngine, read_manifest

    if export_dir is None:
        raise ValueError("the onnx engine needs inference.export_dir")
    manifest = read_manifest(export_dir)
    exported = {m["name"]: m for m in manifest["members"]}
    names = [member_name(p.parent.parent.name, fold_of(p.parent.name)) for p in paths]
    for name, path in zip(names, paths, strict=True):
        m = exported.get(name)
        if m is not None and m.get("checkpoint_sha256") != sha256_file(path):
            raise ExportError(
                f"{Path(export_dir)}: {name} was exported from another {path} "
                "(stale export; re-run: dvc repro export)"
            )
    if not names:
        runs = set(ensemble.runs) if ensemble is not None else set()
        names = [
            n for n, m in exported.items()
            if m["run"] in runs and (fold is None or n.endswith(f"/{fold_name(fold)}"))
        ]  # fmt: skip
    return OnnxEngine(export_dir, names, device="cpu" if device == "cpu" else "auto",
                      threads=threads, runtime=runtime)  # fmt: skip


def bundle_from_params(params: Params, purpose: str = "score", **kwargs) -> InferenceBundle:
    """:func:`load_bundle` with the workspace's models folder, device and inference engine
    (``params.inference``, resolved for ``purpose``: ``explain`` for reports with heatmaps);
    ``kwargs`` as for :func:`load_bundle`."""
    inf = params.inference
    engine = inf.engine if purpose == "score" else resolve_engine(inf.engine, purpose=purpose)
    return load_bundle(
        params.base.models_dir, params.base.device, engine=engine,
        export_dir=inf.export_dir, threads=inf.threads, runtime=inf.runtime, **kwargs,
    )  # fmt: skip
