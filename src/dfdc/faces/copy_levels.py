"""What the compressed copies are, apart from how they are made: their levels (a CRF, or a
downscale then a CRF) and the faces table of each level's copies. Training reads these; the
encoder lives in :mod:`dfdc.faces.copies`, so an edit to how copies are encoded reruns the
compress stage and not every fold (the train stage's code does not hold the encoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dfdc.core.config import CompressConfig

__all__ = ["CopyLevel", "copy_levels", "copy_tables"]


@dataclass(frozen=True)
class CopyLevel:
    """One compression level: x264 at ``crf`` after scaling the frame by ``scale``."""

    crf: int
    scale: float = 1.0

    @property
    def name(self) -> str:
        return f"crf{self.crf}" if self.scale == 1.0 else f"x{self.scale:g}_crf{self.crf}"


def copy_levels(cfg: CompressConfig, which: str = "all") -> list[CopyLevel]:
    """The levels the training draws from (``train``), the validation levels (``validate``),
    or both, without repeats (``all``)."""
    train = [CopyLevel(c) for c in cfg.train_crf]
    train += [CopyLevel(cfg.downscale_crf, s) for s in cfg.train_downscale]
    val = [CopyLevel(c) for c in cfg.validate_crf]
    chosen = {"train": train, "validate": val, "all": train + val}[which]
    return list(dict.fromkeys(chosen))


def copy_tables(faces_table: pd.DataFrame, copies: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Level -> the faces table of that level's copies: the same rows (frames, boxes,
    landmarks, crop indices) for every video whose copy is ``ok``, its ``file`` the copy's
    (``source_file``: the faces file it copies)."""
    out = {}
    ok = copies[copies["status"] == "ok"]
    for level, rows in ok.groupby("level", sort=True):
        files = dict(zip(rows["video"], rows["file"], strict=True))
        table = faces_table[faces_table["video"].isin(files)].copy()
        table["source_file"] = table["file"]
        table["file"] = table["video"].map(files)
        out[str(level)] = table.reset_index(drop=True)
    return out
