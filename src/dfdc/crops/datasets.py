"""Face crops for training and validation, read from the faces stage's per-video files.

A training epoch is a plan: a list of (video, crop) items drawn afresh each epoch from the
balancing rule, so every real video is seen every epoch and the fakes rotate (the DFDC train
set has about five fakes per real). Under DistributedDataParallel every rank draws the same
plan from the same seed and takes its own slice.

With ``balance: pairs`` the plan is a list of pairs, flattened: a fake's crop follows its
original's crop of the same frame. DFDC and FaceForensics++ fakes are pixel-aligned with their
originals and the faces stage crops a fake with its original's boxes, so the two crops differ
only where the face was manipulated; the dataset augments both alike, so identity, scene and
augmentation cancel within the pair and the loss can only be lowered by the manipulation.
Self-blended pseudo-fakes (``sbi``) are drawn from real crops: a real crop is followed by its
own self-blend (an item with ``blend`` set, label fake) and made in the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dfdc.core.config import SelfBlendConfig, TrainConfig
from dfdc.crops.sbi import has_landmarks, self_blend
from dfdc.crops.transforms import FacePartDropout
from dfdc.faces.store import decode_crop, load_video_faces
from dfdc.masks.store import MaskStore

__all__ = [
    "CropDataset",
    "CropItem",
    "balanced_videos",
    "collate_groups",
    "crop_items",
    "epoch_plan",
    "fake_originals",
    "plan_group",
    "pseudo_fake",
    "sbi_skipped",
]


@dataclass(frozen=True)
class CropItem:
    video: str
    file: str
    crop_index: int
    frame: int
    track: int
    label: float  # 1.0 FAKE, 0.0 REAL
    landmarks: tuple[float, ...]  # 10 numbers, as fractions of the crop's side
    blend: bool = False  # the self-blended pseudo-fake of this (real) crop, label 1.0


def pseudo_fake(item: CropItem) -> CropItem:
    """The self-blended pseudo-fake of a real crop (made when the dataset reads it)."""
    return replace(item, label=1.0, blend=True)


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


def sbi_skipped(items: list[CropItem]) -> int:
    """Real crops that can get no self-blend (landmarks missing or degenerate)."""
    return sum(1 for it in items if it.label == 0.0 and not has_landmarks(it.landmarks))


def fake_originals(folds: pd.DataFrame, videos: dict[str, str]) -> dict[str, str]:
    """Fake video -> its original, for the ``videos`` given (the folds table's column)."""
    rows = folds[folds["name"].isin(videos) & folds["original"].notna()]
    return dict(zip(rows["name"], rows["original"], strict=True))


def plan_group(cfg: TrainConfig) -> int:
    """Items per draw of a plan: 2 when it is made of pairs (``balance: pairs``, or
    self-blends beside their real crop), else 1."""
    return 2 if cfg.balance == "pairs" or cfg.sbi.only else 1


def epoch_plan(
    items: list[CropItem],
    cfg: TrainConfig,
    epoch: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
    originals: dict[str, str] | None = None,
) -> list[CropItem]:
    """The items of one epoch: ``frames_per_video`` crops per chosen video, shuffled; for a
    plan of pairs (:func:`plan_group`) a flat list whose items ``2i`` and ``2i + 1`` are a real
    crop and a fake (or self-blended) crop of the same frame. ``originals`` maps a fake video
    to its original (needed for ``balance: pairs``; a fake whose original has no crop of the
    frame is left out)."""
    rng = np.random.default_rng([seed, epoch])
    by_video: dict[str, list[CropItem]] = {}
    for it in items:
        by_video.setdefault(it.video, []).append(it)
    if cfg.sbi.only:  # reals and their pseudo-fakes alone
        by_video = {v: c for v, c in by_video.items() if c[0].label == 0.0}
    group = plan_group(cfg)
    if cfg.balance == "pairs" and not cfg.sbi.only:
        draws = _pair_draws(by_video, cfg, rng, originals or {})
    else:
        labels = {v: c[0].label for v, c in by_video.items()}
        chosen = balanced_videos(labels, cfg.balance, rng)
        draws = []
        for v in chosen:
            crops = by_video[v]
            k = min(cfg.frames_per_video, len(crops))
            draws.extend((crops[i],) for i in rng.choice(len(crops), k, replace=False))
    # Pseudo-fakes: each drawn real crop yields its self-blend with probability sbi.p (beside
    # it in a plan of pairs, as a draw of its own otherwise).
    if cfg.sbi.p > 0:  # a crop without usable landmarks cannot place a mask (sbi_skipped)
        reals = [d[0] for d in draws if d[0].label == 0.0 and has_landmarks(d[0].landmarks)]
        blends = [r for r in reals if rng.random() < cfg.sbi.p]
        if group == 2:
            if cfg.sbi.only:
                draws = []
            draws.extend((r, pseudo_fake(r)) for r in blends)
        else:
            draws.extend((pseudo_fake(r),) for r in blends)
    order = rng.permutation(len(draws))
    draws = [draws[i] for i in order]
    # Equal shares per rank (DDP needs the same number of steps everywhere).
    per_rank = len(draws) // world
    return [it for d in draws[rank * per_rank : (rank + 1) * per_rank] for it in d]


def _pair_draws(
    by_video: dict[str, list[CropItem]],
    cfg: TrainConfig,
    rng: np.random.Generator,
    originals: dict[str, str],
) -> list[tuple[CropItem, ...]]:
    """(original crop, fake crop) of the same frame and track, ``frames_per_video`` per fake
    video; every fake video is used each epoch (each real then appears once per fake)."""
    draws: list[tuple[CropItem, ...]] = []
    for video in sorted(by_video):
        crops = by_video[video]
        original = originals.get(video)
        if crops[0].label != 1.0 or original not in by_video:
            continue
        same = {(c.frame, c.track): c for c in by_video[original]}
        pairs = [(same[(c.frame, c.track)], c) for c in crops if (c.frame, c.track) in same]
        k = min(cfg.frames_per_video, len(pairs))
        draws.extend(pairs[i] for i in rng.choice(len(pairs), k, replace=False))
    return draws


@lru_cache(maxsize=64)
def _video_crops(file: str) -> tuple[bytes, ...]:
    return tuple(load_video_faces(file).crops)


class CropDataset(Dataset):
    """Decoded, augmented crops of a plan. With ``group`` 2 an index is a pair (plan items
    ``2i``, ``2i + 1``): both get the same face-part dropout and the same augmentation, and
    come back stacked (:func:`collate_groups` makes batches of them).

    With ``masks`` (the masks stage's :class:`~dfdc.masks.compute.MaskStore`) each crop also comes
    with where it was altered: a fake's difference mask, a pseudo-fake's blend mask, nothing
    for a real; ``mask_targets`` returns them (and whether each is known: a fake without its
    original has none) for the segmentation head, ``guide`` steers the part dropout to them.

    With ``copies`` (one mapping a compression level: a faces file -> its compressed copy's,
    from the compress stage) an index is read from one level's copy with probability
    ``copy_p``, the level drawn uniformly; both crops of a pair from the same level (or both
    from the originals when either has no copy), so the pair still differs only where the
    face was manipulated."""

    def __init__(
        self,
        items: list[CropItem],
        transform,
        part_dropout: float = 0.0,
        seed: int = 0,
        reduce: int = 1,
        group: int = 1,
        sbi: SelfBlendConfig | None = None,
        masks: MaskStore | None = None,
        mask_targets: bool = False,
        guide: bool = False,
        copies: list[dict[str, str]] | None = None,
        copy_p: float = 0.0,
    ) -> None:
        self.items = items
        self.transform = transform
        self.dropout = FacePartDropout(part_dropout)
        self.rng = np.random.default_rng(seed)
        # Crops are stored larger than most models' input: decode them at 1/reduce the size.
        self.reduce = reduce
        self.group = group
        self.sbi = sbi or SelfBlendConfig()
        self.masks = masks
        self.mask_targets = mask_targets and masks is not None
        self.guide = guide and masks is not None
        self.copies = copies or []
        self.copy_p = copy_p if self.copies else 0.0

    def _copy(self, *items: CropItem) -> dict[str, str] | None:
        """The level (file -> copy file) the items are read from this time, or None."""
        if self.copy_p <= 0 or self.rng.random() >= self.copy_p:
            return None
        level = self.copies[int(self.rng.integers(len(self.copies)))]
        return level if all(it.file in level for it in items) else None

    def __len__(self) -> int:
        return len(self.items) // self.group

    def _image(
        self, it: CropItem, copy: dict[str, str] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
        """(crop, landmarks in its pixels, altered-pixel mask at its size or None, whether the
        mask is known); the crop from ``copy``'s file when given."""
        file = copy[it.file] if copy is not None else it.file
        image = decode_crop(_video_crops(file)[it.crop_index], self.reduce)
        landmarks = np.asarray(it.landmarks).reshape(5, 2) * image.shape[1]
        if self.masks is None:
            if it.blend:
                image = self_blend(image, landmarks, self.sbi, self.rng)
            return image, landmarks, None, 0.0
        shape = image.shape[:2]
        if it.blend:
            image, mask = self_blend(image, landmarks, self.sbi, self.rng, return_mask=True)
            return image, landmarks, mask, 1.0
        if it.label == 0.0:
            return image, landmarks, np.zeros(shape, np.float32), 1.0
        stored = self.masks.get(it.video, it.crop_index)
        if stored is None:
            return image, landmarks, np.zeros(shape, np.float32), 0.0
        return (
            image,
            landmarks,
            cv2.resize(stored, shape[::-1], interpolation=cv2.INTER_LINEAR),
            1.0,
        )

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if self.group == 1:
            it = self.items[i]
            image, landmarks, mask, known = self._image(it, self._copy(it))
            image = self.dropout(image, landmarks, self.rng, mask if self.guide else None)
            if not self.mask_targets:
                x = self.transform(image=image)["image"]
                return x, torch.tensor(it.label, dtype=torch.float32)
            out = self.transform(image=image, mask=mask)
            return (
                out["image"],
                torch.tensor(it.label, dtype=torch.float32),
                out["mask"].float(),
                torch.tensor(known, dtype=torch.float32),
            )
        real, fake = self.items[2 * i], self.items[2 * i + 1]
        copy = self._copy(real, fake)
        (a, lm, ma, ka), (b, _, mb, kb) = self._image(real, copy), self._image(fake, copy)
        # The same dropout draw for both (replay the generator's state), guided by the fake's mask.
        guide = mb if self.guide else None
        state = self.rng.bit_generator.state
        a = self.dropout(a, lm, self.rng, guide)
        self.rng.bit_generator.state = state
        b = self.dropout(b, lm, self.rng, guide)
        y = torch.tensor([real.label, fake.label], dtype=torch.float32)
        if not self.mask_targets:
            out = self.transform(image=a, image1=b)
            return torch.stack([out["image"], out["image1"]]), y
        out = self.transform(image=a, image1=b, mask=ma, mask1=mb)
        return (
            torch.stack([out["image"], out["image1"]]),
            y,
            torch.stack([out["mask"], out["mask1"]]).float(),
            torch.tensor([ka, kb], dtype=torch.float32),
        )


def collate_groups(batch: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """A batch of pairs as one batch of crops (pair members side by side), every field."""
    return tuple(torch.cat(parts) for parts in zip(*batch, strict=True))
