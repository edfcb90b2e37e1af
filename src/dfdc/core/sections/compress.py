"""The ``compress`` section: the compressed copies stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ranged

__all__ = ["CompressConfig"]


@dataclass(frozen=True)
class CompressConfig:
    """The compress stage: every video's crops re-cut from x264 re-encodes (of its crops or of
    the video: ``source``), one copy a level (a CRF, or a downscale then ``downscale_crf``),
    pixel-aligned with the crops. ``when: auto`` makes them for a real data source only (the
    sample's make repro is not slowed by them)."""

    when: Literal["auto", "always", "never"] = "auto"
    # Where a training level's copy is encoded from: video (the frames around each crop,
    # decoded again: 1.8-2.3x the faces stage) or crops (each track's stored crops, no video
    # decoded: 0.3-0.4x the faces stage, and the out-of-fold c40-like figures dropped:
    # docs/robustness.md). Validation levels always come from the video: they stand for a
    # real re-encode.
    source: Literal["video", "crops"] = "video"
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
