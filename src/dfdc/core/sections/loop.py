"""What every run section (``train``, ``sequence``) gives the training loop, whatever its kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dfdc.core.typed import ConfigError, ranged

__all__ = ["CompressTrainConfig", "LoopConfig"]


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
