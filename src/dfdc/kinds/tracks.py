"""Face tracks as the sequence kind trains and scores them: items in frame order, temporal
augmentation (sub-sequences, frame-rate changes, reversal), the dataset and its padding, an
epoch's plan, and one probability a track given to each of its crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from dfdc.core.config import SequenceConfig
from dfdc.crops.datasets import balanced_videos
from dfdc.kinds.sequence_head import SequenceHead

__all__ = [
    "TrackDataset",
    "TrackItem",
    "augment_track",
    "collate_tracks",
    "track_items",
    "track_plan",
    "track_probs",
]


@dataclass(frozen=True)
class TrackItem:
    video: str
    track: int
    label: float
    rows: tuple[int, ...]  # rows of the faces table (and the embeddings), in frame order
    frames: tuple[int, ...]


def track_items(
    faces: pd.DataFrame, labels: dict[str, str], max_tracks: int | None
) -> list[TrackItem]:
    """One item per face track of the labelled videos (tracks ``< max_tracks`` when given)."""
    table = faces.assign(_pos=np.arange(len(faces)))
    table = table[table["video"].isin(labels)]
    if max_tracks is not None:
        table = table[table["track"] < max_tracks]
    items = []
    for (video, track), g in table.sort_values("frame").groupby(["video", "track"], sort=True):
        items.append(
            TrackItem(
                video,
                int(track),
                float(labels[video] == "FAKE"),
                tuple(int(r) for r in g["_pos"]),
                tuple(int(f) for f in g["frame"]),
            )
        )
    return items


def augment_track(x: np.ndarray, cfg: SequenceConfig, rng: np.random.Generator) -> np.ndarray:
    """Sub-sequence, frame-rate change (drop every other step, or repeat each) and reversal."""
    n = len(x)
    lo = min(cfg.min_len, n)
    if rng.random() < cfg.subseq_p and n > lo:
        length = int(rng.integers(lo, n + 1))
        start = int(rng.integers(0, n - length + 1))
        x = x[start : start + length]
    if rng.random() < cfg.rate_p:
        if rng.random() < 0.5 and len(x) // 2 >= lo:
            x = x[int(rng.integers(0, 2)) :: 2]
        else:
            x = np.repeat(x, 2, axis=0)
    if rng.random() < cfg.reverse_p:
        x = x[::-1]
    return np.ascontiguousarray(x)


class TrackDataset(Dataset):
    """Tracks of cached embeddings, temporally augmented when ``cfg`` is given. With
    ``copies`` (per compression level, embeddings of the same rows cut from that level's
    copies, :func:`copy_embeddings`) a track is read from one level, drawn uniformly, with
    probability ``copy_p``, so the head also trains on the embeddings a compressed video gives
    (on the shared FF++ clips this changed nothing: the frame model that embeds them trained on
    the copies too, and the head fit them as tightly; docs/robustness.md)."""

    def __init__(
        self,
        items: list[TrackItem],
        embeddings: np.ndarray,
        cfg: SequenceConfig | None = None,
        seed: int = 0,
        copies: list[np.ndarray] | None = None,
        copy_p: float = 0.0,
    ) -> None:
        self.items, self.embeddings, self.cfg = items, embeddings, cfg
        self.rng = np.random.default_rng(seed)
        self.copies = copies or []
        self.copy_p = copy_p if self.copies else 0.0

    def __len__(self) -> int:
        return len(self.items)

    def _source(self) -> np.ndarray:
        if self.copy_p <= 0 or self.rng.random() >= self.copy_p:
            return self.embeddings
        return self.copies[int(self.rng.integers(len(self.copies)))]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        it = self.items[i]
        x = self._source()[list(it.rows)].astype(np.float32)
        if self.cfg is not None:
            x = augment_track(x, self.cfg, self.rng)
        return torch.from_numpy(x), torch.tensor(it.label, dtype=torch.float32)


def collate_tracks(
    batch: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Pad to the longest track; the lengths travel with the batch for packing."""
    xs, ys = zip(*batch, strict=True)
    lengths = torch.tensor([len(x) for x in xs], dtype=torch.int64)
    return (pad_sequence(list(xs), batch_first=True), lengths), torch.stack(ys)


def track_plan(
    items: list[TrackItem], clips: int, balance: str, epoch: int, seed: int, rank: int, world: int
) -> list[TrackItem]:
    """One epoch: the tracks of the balanced videos, each ``clips`` times (each draw gets its
    own temporal augmentation), shuffled, and this rank's equal share."""
    rng = np.random.default_rng([seed, epoch])
    by_video: dict[str, list[TrackItem]] = {}
    for it in items:
        by_video.setdefault(it.video, []).append(it)
    chosen = balanced_videos({v: ts[0].label for v, ts in by_video.items()}, balance, rng)
    plan = [t for v in chosen for t in by_video[v] for _ in range(clips)]
    plan = [plan[i] for i in rng.permutation(len(plan))]
    per_rank = len(plan) // world
    return plan[rank * per_rank : (rank + 1) * per_rank]


@torch.inference_mode()
def track_probs(
    head: SequenceHead,
    embeddings: np.ndarray,
    tracks: np.ndarray,
    frames: np.ndarray,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Each crop gets its track's probability (tracks ordered by frame, as in training)."""
    probs = np.zeros(len(tracks), np.float64)
    if len(tracks) == 0:
        return probs
    head.eval()
    for t in np.unique(tracks):
        idx = np.flatnonzero(tracks == t)
        idx = idx[np.argsort(frames[idx], kind="stable")]
        x = torch.from_numpy(embeddings[idx].astype(np.float32))[None].to(device)
        logit = head(x, torch.tensor([len(idx)]))
        probs[idx] = float(torch.sigmoid(logit.float()).squeeze())
    return probs
