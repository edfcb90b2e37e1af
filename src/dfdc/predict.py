"""The one inference path: video -> frames -> faces -> crops -> frame scores -> video score.

``dfdc predict``, and later the ensemble's test predictions and the Kaggle kernel, call this.
Crops are made by the faces stage's own :func:`extract_video` with the face settings saved in
the models' checkpoints, and go through the same JPEG round trip and transforms as in
training, so train and test crops cannot drift apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dfdc.aggregate import video_score
from dfdc.config import FacesConfig, ModelConfig, params_from_dict
from dfdc.faces.detect import Detector, resolve_device
from dfdc.faces.extract import extract_video
from dfdc.faces.store import VideoFaces, decode_crop, decode_reduction
from dfdc.models import build_model, model_norm
from dfdc.transforms import eval_transform

log = logging.getLogger(__name__)

__all__ = ["LoadedModel", "Predictor", "VideoPrediction", "find_checkpoints", "load_models"]


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module  # the frame classifier, or the sequence head
    input_size: int
    transform: object
    faces: FacesConfig
    kind: str = "frame"
    embedder: torch.nn.Module | None = None  # sequence models: the per-frame embedder


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
        }


def find_checkpoints(root: str | Path) -> list[Path]:
    """``best.pt`` files under ``root`` (a run folder, a fold folder or a file)."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = sorted(root.rglob("best.pt"))
    if not found:
        raise FileNotFoundError(f"{root}: no best.pt found (train a model first: dvc repro train)")
    return found


def load_models(paths: list[Path], device: str = "cpu") -> list[LoadedModel]:
    """Rebuild each model from the config saved beside its weights, not from params.yaml."""
    out = []
    for path in paths:
        state = torch.load(path, map_location="cpu", weights_only=False)
        cfg = state["config"]
        train = params_from_dict({"train": cfg["train"], "faces": cfg["faces"]})
        mcfg: ModelConfig = replace(train.train.model, pretrained=False, pretrained_file="")
        name = f"{cfg['train']['run']}/fold{state['fold']}"
        dev = resolve_device(device)
        if mcfg.kind == "sequence":
            from dfdc.sequence import SequenceHead, embedder_from_state

            embedder, ecfg = embedder_from_state(state["embedder"])
            mean, std = model_norm(embedder.net)
            head = SequenceHead(embedder.dim, mcfg.sequence)
            head.load_state_dict(state["model"])
            out.append(
                LoadedModel(
                    name,
                    head.eval().to(dev),
                    ecfg.input_size,
                    eval_transform(ecfg.input_size, mean, std),
                    train.faces,
                    kind="sequence",
                    embedder=embedder.eval().to(dev),
                )
            )
            continue
        model = build_model(mcfg)
        model.load_state_dict(state["model"])
        model.eval().to(dev)
        mean, std = model_norm(model)
        out.append(
            LoadedModel(
                name,
                model,
                mcfg.input_size,
                eval_transform(mcfg.input_size, mean, std),
                train.faces,
            )
        )
    faces = {m.faces for m in out}
    if len(faces) > 1:
        raise ValueError("the models were trained on crops made with different faces settings")
    return out


class Predictor:
    def __init__(
        self,
        models: list[LoadedModel],
        device: str = "auto",
        rule: str = "mean",
        faces_combine: str = "max",
        clip: float = 0.0,
        batch_size: int = 64,
    ) -> None:
        if not models:
            raise ValueError("no models to predict with")
        self.models = models
        self.device = resolve_device(device)
        self.faces_cfg = replace(models[0].faces, workers=1)
        self.detector = Detector(self.faces_cfg, self.device)
        self.rule, self.faces_combine, self.clip, self.batch_size = (
            rule,
            faces_combine,
            clip,
            batch_size,
        )

    @torch.inference_mode()
    def _frame_probs(self, m: LoadedModel, vf: VideoFaces) -> np.ndarray:
        """One score per crop; a sequence model gives each crop its track's score."""
        reduce = decode_reduction(self.faces_cfg.crop_size, m.input_size)
        if m.kind == "sequence":
            from dfdc.sequence import embed_crops, track_probs

            emb = embed_crops(
                m.embedder, vf.crops, m.transform, reduce, self.device, self.batch_size
            )
            return track_probs(
                m.model, emb, np.asarray(vf.track), np.asarray(vf.frame), self.device
            )
        xs = [m.transform(image=decode_crop(c, reduce))["image"] for c in vf.crops]
        probs = []
        for i in range(0, len(xs), self.batch_size):
            x = torch.stack(xs[i : i + self.batch_size]).to(self.device)
            probs.append(torch.sigmoid(m.model(x).squeeze(1).float()).cpu().numpy())
        return np.concatenate(probs)

    def predict_video(self, path: str | Path) -> VideoPrediction:
        """Never raises for a bad video: an unreadable one, or one with no face, scores 0.5."""
        path = Path(path)
        vf = extract_video(path, self.faces_cfg, self.detector)
        status = vf.status["status"]
        if status != "ok":
            return VideoPrediction(path.name, 0.5, status, vf.status.get("reason"))
        per_model = {m.name: self._frame_probs(m, vf) for m in self.models}
        scores = [
            video_score(p, vf.track, self.rule, self.faces_combine) for p in per_model.values()
        ]
        prob = float(np.mean(scores))
        if self.clip > 0:
            prob = float(np.clip(prob, self.clip, 1 - self.clip))
        return VideoPrediction(
            path.name,
            prob,
            "ok",
            frames=[int(f) for f in vf.frame],
            tracks=[int(t) for t in vf.track],
            frame_probs={k: [round(float(x), 6) for x in v] for k, v in per_model.items()},
            crops=vf.crops,
        )
