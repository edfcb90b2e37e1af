"""What every model kind shares: the runtime, the training ``Task``, the loaders, the loaded
model, and the :class:`ModelKind` interface the registry holds.

This module imports no kind and no loop, so the loop (``dfdc.training.engine``), the kinds
(``dfdc.kinds.frame``, ``dfdc.kinds.sequence``) and inference (``dfdc.inference.predict``)
can all import it without a cycle.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from dfdc.core.config import FacesConfig, Params, RunConfig, resolve_device

__all__ = [
    "LoadedModel",
    "ModelKind",
    "Runtime",
    "Task",
    "make_loader",
    "runtime",
]


@dataclass
class Runtime:
    """Where and how a model runs: device, mixed precision, memory format, DDP rank."""

    device: torch.device
    amp: bool
    channels_last: bool
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def pin(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return nullcontext()

    def to_input(self, x: torch.Tensor | tuple) -> torch.Tensor | tuple:
        if isinstance(x, tuple | list):  # (padded sequences, lengths): lengths stay on the CPU
            return tuple(
                t.to(self.device, non_blocking=True) if t.is_floating_point() else t for t in x
            )
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, model: torch.nn.Module, x: torch.Tensor | tuple):
        """The model's raw output on ``x`` (moved to the device, under autocast)."""
        x = self.to_input(x)
        with self.autocast():
            return model(*x) if isinstance(x, tuple) else model(x)

    def logits(self, model: torch.nn.Module, x: torch.Tensor | tuple) -> torch.Tensor:
        return self.forward(model, x).squeeze(1).float()

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on this runtime's device (channels-last where that applies)."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model


def runtime(device: str, amp: bool = False, channels_last: bool = False) -> Runtime:
    """The runtime for ``device`` (``auto``, ``cpu``, ``cuda``); AMP only on CUDA, channels-last
    on both (on a 2-core CPU an EfficientNet-Lite0 training step at 224 px took 2.6-2.9 s in
    channels-last against 4.7 s in the default layout; ``benchmarks/train_throughput.py``).
    Under ``torchrun`` the process group is started and each rank takes its own GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    name = resolve_device(device)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if name == "cuda" else "gloo")
    if name == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    cuda = dev.type == "cuda"
    return Runtime(dev, amp and cuda, channels_last, rank, world)


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
    # classification loss on (B, 1) logits (dfdc.training.losses.smoothed_bce).
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
    how it scores crops. Kinds register once (:func:`dfdc.kinds.register_kind`); the loop,
    the ensemble, ``dfdc predict`` and the kernel look them up and never test a name."""

    name: str

    @abstractmethod
    def task(
        self,
        params: Params,
        run: RunConfig,
        fold: int,
        rt: Runtime,
        faces: pd.DataFrame,
        train_labels: dict[str, str],
        val_labels: dict[str, str],
    ) -> Task:
        """The training task of ``run``'s fold ``fold`` (``params``: the shared sections)."""

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
