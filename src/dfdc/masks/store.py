"""The difference masks as training reads them: one ``.npz`` a fake video beside a table of
its crops (written by :mod:`dfdc.masks.compute`), and which crop of the original matches a
fake's crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["MaskStore", "mask_path", "same_frame_crops"]


def mask_path(out_dir: str | Path, video: str) -> Path:
    return Path(out_dir) / f"{Path(video).stem}.npz"


def same_frame_crops(fake, real) -> dict[int, int]:
    """Fake crop index -> the original's crop index of the same frame and track (two
    :class:`~dfdc.faces.store.VideoFaces`); crops the original lacks are left out."""
    where = {
        (int(f), int(t)): i for i, (f, t) in enumerate(zip(real.frame, real.track, strict=True))
    }
    return {
        i: where[(int(f), int(t))]
        for i, (f, t) in enumerate(zip(fake.frame, fake.track, strict=True))
        if (int(f), int(t)) in where
    }


class MaskStore:
    """Masks of training crops by (video, crop index), read per video file when first used.
    Unknown crops (a fake with no original) have none: ``get`` returns None."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._where = {
            (v, int(c)): (f, k)
            for (v, f), g in table.groupby(["video", "file"], sort=False)
            for k, c in enumerate(g["crop_index"])
        }
        self._files: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | Path) -> MaskStore:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no difference masks; run the masks stage (dvc repro masks)"
            )
        return cls(pd.read_parquet(path))

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._where

    def get(self, video: str, crop_index: int) -> np.ndarray | None:
        """The mask as float32 in [0, 1] (``masks.size`` square), or None."""
        hit = self._where.get((video, int(crop_index)))
        if hit is None:
            return None
        file, k = hit
        if file not in self._files:
            with np.load(file) as z:
                self._files[file] = z["mask"]
        return self._files[file][k].astype(np.float32) / 255.0
