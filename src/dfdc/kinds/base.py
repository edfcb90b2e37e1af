"""What every model kind shares: the narrow :class:`TrainContext` a kind trains from, the
training :class:`Task` it returns, the loaders, the loaded model, and the :class:`ModelKind`
interface the registry holds.

This module imports no kind and no loop: the loop (``dfdc.training.loop``), the kinds and
inference (``dfdc.inference.predict``) all import it, and it imports none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from dfdc.core.config import FacesConfig, RunConfig
from dfdc.core.runtime import Runtime
from dfdc.faces.store import decode_crop, decode_reduction

__all__ = [
    "CropBatch",
    "ExportParts",
    "LoadedModel",
    "ModelKind",
    "Task",
    "TrainContext",
    "make_loader",
    "model_inputs",
]


def _reseed_worker(worker_id: int) -> None:
    """Each loader worker gets its own, reproducible augmentation stream."""
    info = torch.utils.data.get_worker_info()
    ds = info.dataset
    seed = (info.seed + worker_id) % 2**32
    ds.rng = np.random.default_rng(seed)
    transform = getattr(ds, "transform", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)


def make_loader(
    ds: Dataset,
    batch_size: int,
    num_workers: int,
    rt: Runtime,
    train: bool,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """The one loader every kind uses: no shuffling (epoch plans are shuffled already and
    sliced per rank), pinned memory on CUDA, and per-worker seeding of the dataset's ``rng``
    (and its transform's) so augmentation is the same with 0 or N workers in any run."""
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=rt.pin,
        drop_last=train and len(ds) > batch_size,
        persistent_workers=False,
        worker_init_fn=_reseed_worker,
        collate_fn=collate_fn,
    )


@dataclass(frozen=True)
class TrainContext:
    """What a kind gets to build one fold's training task, read once by the loop: its run
    config, where things are, the seed, the runtime, and the tables it trains from (never the
    whole ``Params``)."""

    run: RunConfig
    fold: int
    seed: int
    rt: Runtime
    faces: FacesConfig  # the settings the crops were made with (crop size, cache keys)
    crops: pd.DataFrame  # the faces stage's crop table
    folds: pd.DataFrame  # video -> fold (and label, original)
    train_labels: dict[str, str]  # training videos of this fold -> REAL | FAKE
    val_labels: dict[str, str]  # its validation videos
    models_dir: Path  # every run's folds (a sequence run's embedder is another run's fold)
    masks_table: Path  # the masks stage's table (frame runs that use train.masks)
    # Copy level -> the compress stage's crop table of that level (same rows as ``crops``,
    # the files of its compressed copies; dfdc.faces.copies): the levels training draws from
    # (``train.compress``) and those the validation videos are also scored on. Empty: none.
    train_copies: dict[str, pd.DataFrame] = field(default_factory=dict)
    val_copies: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Task:
    """What the loop needs from one kind of model: the model, its loaders, and how its
    validation units (frames or tracks) become per-crop rows of the out-of-fold table."""

    model: torch.nn.Module
    unit: str  # "frame" | "track": names the unit-level validation log loss
    steps_per_epoch: int
    train_loader: Callable[[int], Iterable]  # epoch -> loader
    val_loader: Iterable
    val_labels: np.ndarray  # one per validation unit
    to_crops: Callable[[np.ndarray], tuple[list, np.ndarray]]  # unit probs -> crop items, probs
    checkpoint_extra: dict = field(default_factory=dict)  # saved in best.pt (an embedder)
    # The training loss of (model output, the batch's targets on the device); None: the
    # classification loss on (B, 1) logits (dfdc.crops.losses.smoothed_bce).
    loss: Callable[[object, list[torch.Tensor]], torch.Tensor] | None = None
    # Copy level -> (loader, to_crops) over the validation videos' compressed copies, scored
    # at the kept epoch into oof_<level>.parquet (``train.compress.validate``).
    copy_validation: dict[str, tuple[Iterable, Callable]] = field(default_factory=dict)
    # What the task is made from besides the loop's tables, by identity (an embedder's
    # checkpoint digest): part of the fold's resume key (dfdc.kinds.checkpoint.config_hash).
    inputs: dict[str, str] = field(default_factory=dict)


class CropBatch:
    """One video's crops as every model of an ensemble sees them. Each distinct input (size and
    normalisation) is decoded and transformed once, and each distinct backbone runs once over
    it: a fold's frame model and the sequence model that embeds with that same checkpoint share
    one pass (its pooled features feed the frame head and the sequence head), so an ensemble
    of frame and sequence runs costs one backbone pass a fold, not two."""

    def __init__(
        self,
        crops: list[bytes],
        tracks: np.ndarray,
        frames: np.ndarray,
        rt: Runtime,
        batch_size: int = 64,
        share: bool = True,
    ) -> None:
        # share=False: every model decodes and runs its own backbone (the reference the
        # shared path is checked and benchmarked against).
        self.crops, self.rt, self.batch_size, self.share = crops, rt, batch_size, share
        self.tracks, self.frames = np.asarray(tracks), np.asarray(frames)
        self._inputs: dict[tuple, list[torch.Tensor]] = {}
        self._pooled: dict[str, list[torch.Tensor]] = {}
        self.passes = 0  # backbone passes run (one per distinct backbone): what sharing saves

    def inputs(self, key: tuple, make: Callable[[list[bytes]], torch.Tensor]) -> list[torch.Tensor]:
        """The crops as model input batches (``make``: crops -> a stacked CPU tensor), made once
        per ``key`` (the input size and normalisation)."""
        if key in self._inputs:
            return self._inputs[key]
        out = [
            make(self.crops[i : i + self.batch_size])
            for i in range(0, len(self.crops), self.batch_size)
        ]
        if self.share:
            self._inputs[key] = out
        return out

    def pooled(
        self, backbone_id: str, batches: list[torch.Tensor], net: Callable
    ) -> list[torch.Tensor]:
        """``net``'s pooled features of each input batch, computed once per ``backbone_id``
        (an empty id is never shared)."""
        if backbone_id and backbone_id in self._pooled:
            return self._pooled[backbone_id]
        self.passes += 1
        with torch.inference_mode():
            out = [net(x.to(self.rt.device)) for x in batches]
        if backbone_id and self.share:
            self._pooled[backbone_id] = out
        return out


@dataclass
class LoadedModel:
    """A trained model ready to score crops: rebuilt from its checkpoint by its kind."""

    name: str  # "<run>/fold<k>"
    kind: ModelKind
    model: torch.nn.Module  # the frame classifier, or the sequence head
    input_size: int
    transform: object  # the eval transform (albumentations)
    faces: FacesConfig  # the face settings its training crops were made with
    embedder: torch.nn.Module | None = None  # sequence models: the per-frame embedder
    # What it was trained on (dfdc.core.provenance.training_data); empty: not recorded.
    trained_on: dict = field(default_factory=dict)
    # Which backbone weights compute its pooled features ("run:<sha256 of the frame
    # checkpoint>"): models with the same id share one pass in a CropBatch; "": not shared.
    backbone_id: str = ""
    input_key: tuple = ()  # (input size, mean, std): models with the same key share inputs

    def crop_probs(self, batch: CropBatch) -> np.ndarray:
        """One FAKE probability per crop (a sequence model gives each its track's)."""
        return self.kind.crop_probs(self, batch)


@dataclass
class ExportParts:
    """What a kind hands the ONNX exporter (``dfdc.inference.export``) for one loaded model:
    ``backbone`` maps normalised crops (N, 3, S, S) to the named ``outputs`` (``pooled``: the
    pooled features, ``logit``: one per crop); ``head``, when there is one, maps one track's
    pooled features (1, T, D) to its logit. ``reads``: the backbone output the model's score
    comes from (``logit``: per crop; ``pooled``: through the head, per track)."""

    backbone: torch.nn.Module
    outputs: tuple[str, ...]
    reads: str
    head: torch.nn.Module | None = None


class ModelKind(ABC):
    """A kind of model (frame CNN, sequence over track embeddings, ...): how it trains and
    how it scores crops. Kinds register once (:func:`dfdc.kinds.registry.register_kind`); the loop,
    the ensemble, ``dfdc predict`` and the kernel look them up and never test a name."""

    name: str
    section: str  # the params.yaml section of its runs (and ``dfdc train --section``)
    config_class: type  # its run config (a LoopConfig), typed from that section or a checkpoint
    embeds: bool = False  # its models' pooled features can embed crops for a sequence run

    @abstractmethod
    def task(self, ctx: TrainContext) -> Task:
        """The training task of ``ctx.run``'s fold ``ctx.fold``."""

    @abstractmethod
    def load(self, checkpoint, rt: Runtime) -> LoadedModel:
        """Rebuild the model of a :class:`~dfdc.kinds.checkpoint.Checkpoint` on ``rt``'s
        device, from the run config saved in it (not ``params.yaml``)."""

    def explain(self, model: LoadedModel, batch: CropBatch, picks: list[int]) -> dict:
        """Why it scored as it did, for the crops ``picks`` of ``batch``: ``heatmaps``
        ((len(picks), S, S) in [0, 1], where in each crop the evidence is) and/or
        ``frame_effect`` (one value a crop of the whole batch: how much leaving that frame out
        moves its track's probability). A kind that has neither returns ``{}``."""
        return {}

    def export_parts(self, model: LoadedModel) -> ExportParts:
        """The modules its ONNX export is made of (a kind that has none cannot be exported)."""
        raise NotImplementedError(f"{model.name}: model kind {self.name!r} has no ONNX export")

    @abstractmethod
    def crop_probs(self, model: LoadedModel, batch: CropBatch) -> np.ndarray:
        """FAKE probabilities of a video's crops (JPEG/PNG bytes as the faces stage stores
        them, in ``batch``), in the crops' order."""


def model_inputs(model: LoadedModel, batch: CropBatch) -> list[torch.Tensor]:
    """``batch``'s crops as ``model``'s input batches: decoded at the reduction its input size
    allows and through its eval transform, shared by every model with the same inputs."""
    reduce = decode_reduction(model.faces.crop_size, model.input_size)

    def make(crops: list[bytes]) -> torch.Tensor:
        return torch.stack([model.transform(image=decode_crop(c, reduce))["image"] for c in crops])

    return batch.inputs((*model.input_key, reduce), make)
