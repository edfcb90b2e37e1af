"""The ``sequence`` section: the temporal run and its recurrent head."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dfdc.core.sections.loop import LoopConfig
from dfdc.core.sections.model import ModelConfig
from dfdc.core.typed import ConfigError, ranged

__all__ = ["SequenceConfig", "SequenceRunConfig"]


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
class SequenceRunConfig(LoopConfig):
    """A sequence run (the ``sequence`` section, DVC ``train_sequence@k``): a recurrent head
    over per-frame embeddings along each face track. No image augmentation or frames per
    video: embeddings are cached per fold and augmented in time (see ``sequence``)."""

    kind: Literal["sequence"] = "sequence"
    # The folds the train_sequence stage trains (DVC foreach; a subset of cv.folds; left out:
    # cv.folds). Empty: the sequence run is not trained, as in make real (docs/real-data.md: it
    # earned its weight with embed oof, but not beyond the seed-to-seed spread, so a real run
    # does not pay for it).
    folds: tuple[int, ...] | None = ranged(None, 0, 1000, hi_open=True)
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
