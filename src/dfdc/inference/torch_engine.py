"""The torch engine: the checkpoints themselves scoring a video's crops (the reference the ONNX
engine is checked against).

Each model is rebuilt by its kind from the config saved beside its weights (not from
params.yaml), and every model of a video scores through one :class:`~dfdc.kinds.CropBatch`:
each distinct input is made once and each backbone runs once, its pooled features feeding a
fold's frame head and every sequence head that embeds with the same checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfdc.core.runtime import Runtime, inference_runtime
from dfdc.kinds import CropBatch, LoadedModel, get_kind
from dfdc.kinds.checkpoint import read_checkpoint

__all__ = ["TorchEngine", "load_models"]


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


class TorchEngine:
    """Loaded models on one runtime (weights and inputs on one device, full precision)."""

    def __init__(self, models: list[LoadedModel], rt: Runtime, batch_size: int = 64) -> None:
        if not models:
            raise ValueError("no models to predict with")
        self.models, self.rt, self.batch_size = models, rt, batch_size
        self.device = rt.device.type
        self.faces = models[0].faces
        self.checkpoints: dict[str, Path] = {}  # member name -> its best.pt (when loaded so)
        self.last_batch: CropBatch | None = None

    @classmethod
    def load(cls, paths: list[Path], device: str = "auto") -> TorchEngine:
        rt = inference_runtime(device)
        engine = cls(load_models(paths, rt), rt)
        engine.checkpoints = {m.name: Path(p) for m, p in zip(engine.models, paths, strict=True)}
        return engine

    def crop_probs(
        self, crops: list[bytes], tracks, frames, share: bool = True
    ) -> dict[str, np.ndarray]:
        """Model name -> one score per crop; ``share=False`` runs each model's backbone on
        its own (the reference the shared passes are checked against)."""
        batch = CropBatch(crops, tracks, frames, self.rt, self.batch_size, share)
        out = {m.name: m.crop_probs(batch) for m in self.models}
        # The last video's batch, its inputs and pooled features made: a report explains the
        # scores from it without running the backbones again.
        self.last_batch = batch
        return out
