"""Face crops for training and validation, read from the faces stage's per-video files.

A training epoch is a plan: a list of (video, crop) items drawn afresh each epoch from the
balancing rule, so every real video is seen every epoch and the fakes rotate (the DFDC train
set has about five fakes per real). Under DistributedDataParallel every rank draws the same
plan from the same seed and takes its own slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dfdc.core.config import TrainConfig
from dfdc.faces.store import decode_crop, load_video_faces
from dfdc.training.transforms import FacePartDropout

__all__ = ["CropDataset", "CropItem", "balanced_videos", "crop_items", "epoch_plan"]


@dataclass(frozen=True)
class CropItem:
    video: str
    file: str
    crop_index: int
    frame: int
    track: int
    label: float  # 1.0 FAKE, 0.0 REAL
    landmarks: tuple[float, ...]  # 10 numbers, as fractions of the crop's side


def crop_items(
    faces: pd.DataFrame, labels: dict[str, str], max_tracks: int | None
) -> list[CropItem]:
    """One item per crop of the labelled videos (tracks ``< max_tracks`` when given)."""
    rows = faces[faces["video"].isin(labels)]
    if max_tracks is not None:
        rows = rows[rows["track"] < max_tracks]
    side = (rows["cx2"] - rows["cx1"]).to_numpy()
    scale = 1.0 / np.maximum(side, 1e-6)
    lm = np.stack(
        [
            (rows[f"lm{k}_{a}"].to_numpy() - rows[f"c{a}1"].to_numpy()) * scale
            for k in range(5)
            for a in ("x", "y")
        ],
        axis=1,
    )
    cols = zip(
        rows["video"],
        rows["file"],
        rows["crop_index"],
        rows["frame"],
        rows["track"],
        lm,
        strict=True,
    )
    return [
        CropItem(
            v, f, int(ci), int(fr), int(tr), float(labels[v] == "FAKE"), tuple(map(float, lm_row))
        )
        for v, f, ci, fr, tr, lm_row in cols
    ]


def balanced_videos(labels: dict[str, float], balance: str, rng: np.random.Generator) -> list[str]:
    """``sample``: every real video and as many fakes drawn afresh (or the reverse when fakes
    are fewer); otherwise every video."""
    videos = sorted(labels)
    reals = [v for v in videos if labels[v] == 0.0]
    fakes = [v for v in videos if labels[v] == 1.0]
    if balance != "sample" or not reals or not fakes:
        return videos
    n = min(len(reals), len(fakes))
    return list(rng.choice(reals, n, replace=False)) + list(rng.choice(fakes, n, replace=False))


def epoch_plan(
    items: list[CropItem], cfg: TrainConfig, epoch: int, seed: int, rank: int = 0, world: int = 1
) -> list[CropItem]:
    """The items of one epoch: ``frames_per_video`` crops per chosen video, shuffled."""
    rng = np.random.default_rng([seed, epoch])
    by_video: dict[str, list[CropItem]] = {}
    for it in items:
        by_video.setdefault(it.video, []).append(it)
    chosen = balanced_videos({v: c[0].label for v, c in by_video.items()}, cfg.balance, rng)
    plan: list[CropItem] = []
    for v in chosen:
        crops = by_video[v]
        k = min(cfg.frames_per_video, len(crops))
        plan.extend(crops[i] for i in rng.choice(len(crops), k, replace=False))
    order = rng.permutation(len(plan))
    plan = [plan[i] for i in order]
    # Equal shares per rank (DDP needs the same number of steps everywhere).
    per_rank = len(plan) // world
    return plan[rank * per_rank : (rank + 1) * per_rank]


@lru_cache(maxsize=64)
def _video_crops(file: str) -> tuple[bytes, ...]:
    return tuple(load_video_faces(file).crops)


class CropDataset(Dataset):
    def __init__(
        self,
        items: list[CropItem],
        transform,
        part_dropout: float = 0.0,
        seed: int = 0,
        reduce: int = 1,
    ) -> None:
        self.items = items
        self.transform = transform
        self.dropout = FacePartDropout(part_dropout)
        self.rng = np.random.default_rng(seed)
        # Crops are stored larger than most models' input: decode them at 1/reduce the size.
        self.reduce = reduce

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        it = self.items[i]
        image = decode_crop(_video_crops(it.file)[it.crop_index], self.reduce)
        landmarks = np.asarray(it.landmarks).reshape(5, 2) * image.shape[1]
        image = self.dropout(image, landmarks, self.rng)
        x = self.transform(image=image)["image"]
        return x, torch.tensor(it.label, dtype=torch.float32)
