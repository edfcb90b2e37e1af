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

__all__ = [
    "LoadedModel",
    "ModelKind",
    "Task",
    "TrainContext",
    "make_loader",
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

    def crop_probs(
        self,
        crops: list[bytes],
        tracks: np.ndarray,
        frames: np.ndarray,
        rt: Runtime,
        batch_size: int = 64,
    ) -> np.ndarray:
        """One FAKE probability per crop (a sequence model gives each its track's)."""
        return self.kind.crop_probs(self, crops, tracks, frames, rt, batch_size)


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

    @abstractmethod
    def crop_probs(
        self,
        model: LoadedModel,
        crops: list[bytes],
        tracks: np.ndarray,
        frames: np.ndarray,
        rt: Runtime,
        batch_size: int,
    ) -> np.ndarray:
        """FAKE probabilities of a video's crops (JPEG/PNG bytes as the faces stage stores
        them), in the crops' order."""
