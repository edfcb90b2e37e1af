"""What the compressed copies are, apart from how they are made: their levels (a CRF, or a
downscale then a CRF), the copies a video gets (a level each, or the training levels taking
turns frame by frame) and the faces table of each copy. Training reads these; the encoder lives
in :mod:`dfdc.faces.copies`, so an edit to how copies are encoded reruns the compress stage and
not every fold (the train stage's code does not hold the encoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dfdc.core.config import CompressConfig

__all__ = ["MIXED", "CopyLevel", "CopySet", "copy_levels", "copy_sets", "copy_tables"]

MIXED = "mixed"  # the name of the copy whose frames take turns among the training levels


@dataclass(frozen=True)
class CopyLevel:
    """One compression level: x264 at ``crf`` after scaling the frame by ``scale``."""

    crf: int
    scale: float = 1.0

    @property
    def name(self) -> str:
        return f"crf{self.crf}" if self.scale == 1.0 else f"x{self.scale:g}_crf{self.crf}"


@dataclass(frozen=True)
class CopySet:
    """One copy of a video's crops (one file): each sampled frame re-encoded at one of
    ``levels``, the levels taking turns by the frame's rank among the video's sampled frames.
    A fake samples its original's frames (it reuses the original's boxes), so both crops of a
    pair come from the same level, and the pair still differs only where the face was
    manipulated. With one level, every frame is at that level."""

    name: str
    levels: tuple[CopyLevel, ...]

    def level_of(self, rank: int) -> CopyLevel:
        return self.levels[rank % len(self.levels)]


def copy_levels(cfg: CompressConfig, which: str = "all") -> list[CopyLevel]:
    """The levels the training draws from (``train``), the validation levels (``validate``),
    or both, without repeats (``all``)."""
    train = [CopyLevel(c) for c in cfg.train_crf]
    train += [CopyLevel(cfg.downscale_crf, s) for s in cfg.train_downscale]
    val = [CopyLevel(c) for c in cfg.validate_crf]
    chosen = {"train": train, "validate": val, "all": train + val}[which]
    return list(dict.fromkeys(chosen))


def copy_sets(cfg: CompressConfig, which: str = "all") -> list[CopySet]:
    """The copies each video gets: for training (``train``) the levels in turns as one copy
    (``train_copies: turns``) or one copy a level; for validation (``validate``) one copy a
    level, every frame at it (the c40-like out-of-fold figures score whole videos); or both
    (``all``), a copy named twice made once."""
    levels = copy_levels(cfg, "train")
    if cfg.train_copies == "turns" and len(levels) > 1:
        train = [CopySet(MIXED, tuple(levels))]
    else:
        train = [CopySet(lv.name, (lv,)) for lv in levels]
    val = [CopySet(lv.name, (lv,)) for lv in copy_levels(cfg, "validate")]
    chosen = {"train": train, "validate": val, "all": train + val}[which]
    return list({s.name: s for s in chosen}.values())


def copy_tables(faces_table: pd.DataFrame, copies: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Copy name -> the faces table of that copy: the same rows (frames, boxes, landmarks,
    crop indices) for every video whose copy is ``ok``, its ``file`` the copy's
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
