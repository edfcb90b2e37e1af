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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dfdc.core.config import FacesConfig
from dfdc.core.layout import find_checkpoints, fold_name
from dfdc.core.provenance import describe_training_data
from dfdc.core.runtime import Runtime, inference_runtime
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video
from dfdc.inference.aggregate import video_score
from dfdc.inference.ensemble import Ensemble
from dfdc.kinds import LoadedModel, get_kind
from dfdc.kinds.checkpoint import read_checkpoint

log = logging.getLogger(__name__)

__all__ = [
    "BundleActor",
    "InferenceBundle",
    "Predictor",
    "VideoPrediction",
    "load_bundle",
    "load_models",
]


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
        }


def load_models(paths: list[Path], rt: Runtime) -> list[LoadedModel]:
    """Rebuild each model from the config saved beside its weights (not from params.yaml),
    by its kind, on ``rt``'s device."""
    out = []
    for path in paths:
        ckpt = read_checkpoint(path)
        model = get_kind(ckpt.kind).load(ckpt, rt)
        model.trained_on = ckpt.data
        out.append(model)
    if len({m.faces for m in out}) > 1:
        raise ValueError("the models were trained on crops made with different faces settings")
    return out


class Predictor:
    """Scores videos with a list of models on one runtime."""

    def __init__(
        self,
        models: list[LoadedModel],
        rt: Runtime,
        rule: str = "mean",
        faces_combine: str = "max",
        batch_size: int = 64,
    ) -> None:
        if not models:
            raise ValueError("no models to predict with")
        self.models, self.rt = models, rt
        self.device = rt.device.type
        self.faces_cfg = replace(models[0].faces, workers=1)
        self.detector = Detector(self.faces_cfg, self.device)
        self.rule, self.faces_combine, self.batch_size = rule, faces_combine, batch_size

    def crop_probs(self, vf) -> dict[str, np.ndarray]:
        """Model name -> one score per crop of ``vf`` (a :class:`VideoFaces`)."""
        tracks, frames = np.asarray(vf.track), np.asarray(vf.frame)
        return {
            m.name: m.crop_probs(vf.crops, tracks, frames, self.rt, self.batch_size)
            for m in self.models
        }

    def predict_video(self, path: str | Path) -> VideoPrediction:
        """Never raises for a bad video: an unreadable one, or one with no face, scores 0.5.
        ``prob`` is the plain mean of the models' video scores; an :class:`Ensemble` turns
        the per-model scores into the submitted probability."""
        path = Path(path)
        vf = extract_video(path, self.faces_cfg, self.detector)
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
            frames=[int(f) for f in vf.frame],
            tracks=tracks,
            frame_probs=frame_probs,
            member_scores=members,
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

    def score(self, path: str | Path) -> VideoPrediction:
        """The video's prediction, ``prob`` under the ensemble when there is one."""
        pred = self.predictor.predict_video(path)
        if pred.status == "ok" and self.ensemble is not None:
            pred.prob = self.ensemble.prob(pred.member_scores)
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
) -> InferenceBundle:
    """The one loader of an inference bundle.

    With ``ensemble`` (an :class:`Ensemble` or its JSON file): the checkpoints of its runs
    under ``models_dir``, its rule, weights, temperature and clip. With ``models`` (a run
    folder, fold folder or ``best.pt``): those checkpoints, averaged equally. ``rule`` and
    ``faces_combine`` override the ensemble's. ``fold``: that fold's checkpoints only (they never
    trained on the fold's validation videos: how out-of-fold scores are made at inference).
    Weights and inputs share one device (``auto``: CUDA when present).
    """
    if isinstance(ensemble, str | Path):
        ensemble = Ensemble.load(ensemble)
    if models is not None:
        ensemble = None
        paths = find_checkpoints(models)
    elif ensemble is not None:
        paths = [c for run in ensemble.runs for c in find_checkpoints(Path(models_dir) / run)]
    else:
        raise ValueError("load_bundle needs an ensemble or a models folder")
    if fold is not None:
        paths = [p for p in paths if p.parent.name == fold_name(fold)]
        if not paths:
            raise FileNotFoundError(f"{models_dir}: no {fold_name(fold)}/best.pt for fold {fold}")
    rt = inference_runtime(device)
    loaded = load_models(paths, rt)
    if ensemble is not None:
        ensemble = replace(
            ensemble,
            rule=rule or ensemble.rule,
            faces_combine=faces_combine or ensemble.faces_combine,
        )
        rule, faces_combine = ensemble.rule, ensemble.faces_combine
    predictor = Predictor(loaded, rt, rule=rule or "mean", faces_combine=faces_combine or "max")
    spec = {"models_dir": str(models_dir), "device": device, "ensemble": ensemble,
            "models": None if models is None else str(models), "fold": fold,
            "rule": rule, "faces_combine": faces_combine}  # fmt: skip
    return InferenceBundle(predictor, ensemble, spec)
