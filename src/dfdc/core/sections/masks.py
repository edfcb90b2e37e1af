"""The ``masks`` section: the difference masks stage."""

from __future__ import annotations

from dataclasses import dataclass

from dfdc.core.typed import ranged

__all__ = ["DiffMasksConfig"]


@dataclass(frozen=True)
class DiffMasksConfig:
    """The masks stage: where each fake crop differs from its original's crop of the same frame
    (structural dissimilarity, thresholded), one small mask per crop."""

    out_dir: str = "data/interim/masks"
    table_path: str = "data/interim/masks.parquet"
    # Stored side of a mask (each cell: the fraction of its pixels that were altered).
    size: int = ranged(32, 4, 256)
    # SSIM's Gaussian window, in crop pixels, and the dissimilarity (1 - SSIM) / 2 above which
    # a pixel counts as altered (JPEG noise between two encodes of the same frame stays below).
    sigma: float = ranged(1.5, 0.5, 8)
    threshold: float = ranged(0.1, 0, 1, lo_open=True, hi_open=True)
