"""Difference masks (the masks stage's work): where each fake crop differs from its
original's crop of the same frame.

DFDC and FaceForensics++ fakes are their originals with the face re-rendered, frame for frame,
and the faces stage crops a fake with its original's boxes: the two crops of one frame differ
only where the face was manipulated (plus two encoders' noise). The DFDC winner trained on such
masks (structural dissimilarity between the pair); here they feed an auxiliary segmentation
head and guide the face-part dropout (``train.masks``).

A mask is stored small (``masks.size``, each cell the fraction of its pixels that count as
altered), one ``.npz`` per fake video beside a table of its crops; a fake whose original has no
crops gets no mask and is listed with the reason. Reruns skip videos made with the same params
and the same crops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from dfdc.core.config import DiffMasksConfig, to_dict
from dfdc.core.io import atomic_path, write_parquet
from dfdc.core.progress import progress
from dfdc.core.provenance import config_digest
from dfdc.faces.store import decode_crop, load_video_faces, read_params_hash
from dfdc.masks.store import mask_path, same_frame_crops

log = logging.getLogger(__name__)

__all__ = ["MasksResult", "build_masks", "diff_mask", "dissimilarity", "video_masks"]

# SSIM's constants for 8-bit images (Wang et al., 2004).
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def dissimilarity(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """Per-pixel structural dissimilarity ``(1 - SSIM) / 2`` in [0, 1] of two RGB images of one
    shape (Gaussian window ``sigma``), averaged over the channels. Identical images give 0."""
    x = a.astype(np.float32)
    y = b.astype(np.float32)

    def g(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (0, 0), sigma)

    mx, my = g(x), g(y)
    vx = g(x * x) - mx * mx
    vy = g(y * y) - my * my
    cxy = g(x * y) - mx * my
    ssim = ((2 * mx * my + _C1) * (2 * cxy + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    d = (1.0 - ssim) / 2.0
    return np.clip(d.mean(axis=2) if d.ndim == 3 else d, 0.0, 1.0)


def diff_mask(real: np.ndarray, fake: np.ndarray, cfg: DiffMasksConfig) -> np.ndarray:
    """The stored mask of a fake crop: pixels whose dissimilarity to the original's crop exceeds
    ``cfg.threshold``, as the altered fraction of each cell of a ``cfg.size`` grid (uint8,
    255 = every pixel of the cell altered)."""
    if real.shape != fake.shape:
        raise ValueError(f"crops of different shapes {real.shape} and {fake.shape}")
    altered = (dissimilarity(real, fake, cfg.sigma) > cfg.threshold).astype(np.float32)
    small = cv2.resize(altered, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)


def _hash(cfg: DiffMasksConfig, fake_hash: str, real_hash: str) -> str:
    keys = {k: v for k, v in to_dict(cfg).items() if k not in ("out_dir", "table_path")}
    return config_digest({"masks": keys, "crops": [fake_hash, real_hash]})


def video_masks(fake_file: str, real_file: str, cfg: DiffMasksConfig) -> tuple[np.ndarray, ...]:
    """(fake crop indices, masks, original crop indices) of the fake's crops whose frame and
    track the original also has."""
    fake, real = load_video_faces(fake_file), load_video_faces(real_file)
    idx, masks, orig = [], [], []
    for i, j in same_frame_crops(fake, real).items():
        a, b = decode_crop(real.crops[j]), decode_crop(fake.crops[i])
        if a.shape != b.shape:
            continue
        idx.append(i)
        orig.append(j)
        masks.append(diff_mask(a, b, cfg))
    size = cfg.size
    return (
        np.asarray(idx, np.int32),
        np.stack(masks) if masks else np.zeros((0, size, size), np.uint8),
        np.asarray(orig, np.int32),
    )


@dataclass
class MasksResult:
    table: pd.DataFrame  # one row a masked crop: video, original, crop_index, area, file
    status: pd.DataFrame  # one row a fake video: ok | no_original | failed, with a reason


def build_masks(faces: pd.DataFrame, index: pd.DataFrame, cfg: DiffMasksConfig) -> MasksResult:
    """A mask for every crop of every fake whose original has crops (``faces``: the crop
    table; ``index``: the video index); videos made with the same params and crops are kept."""
    files = faces.groupby("video")["file"].first().to_dict()
    fakes = index[(index["label"] == "FAKE") & index["name"].isin(files)]
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[pd.DataFrame] = []
    status: list[dict] = []
    for video, original in progress(
        zip(fakes["name"], fakes["original"], strict=True),
        total=len(fakes),
        desc="masks",
        unit="video",
    ):
        if original not in files:
            status.append({"video": video, "status": "no_original", "reason": "no crops"})
            continue
        path = mask_path(out_dir, video)
        want = _hash(
            cfg, read_params_hash(files[video]) or "", read_params_hash(files[original]) or ""
        )
        try:
            if read_params_hash(path) != want:
                idx, masks, orig = video_masks(files[video], files[original], cfg)
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, crop_index=idx, mask=masks, original_index=orig,
                             params_hash=np.array(want))  # fmt: skip
            with np.load(path) as z:
                idx, area = z["crop_index"], z["mask"].reshape(len(z["mask"]), -1).mean(1) / 255
        except (OSError, ValueError, KeyError) as exc:  # one bad video never stops the stage
            status.append(
                {"video": video, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            )
            log.warning("%s: no masks (%s)", video, exc)
            continue
        status.append({"video": video, "status": "ok", "reason": ""})
        rows.append(pd.DataFrame({"video": video, "original": original, "crop_index": idx,
                                  "area": area.astype(np.float32), "file": str(path)}))  # fmt: skip
    columns = ["video", "original", "crop_index", "area", "file"]
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    write_parquet(table, cfg.table_path)
    status_df = pd.DataFrame(status, columns=["video", "status", "reason"])
    counts = status_df["status"].value_counts().to_dict()
    log.info("masks: %d crops of %d fake videos (%s)", len(table), len(status_df), counts)
    return MasksResult(table, status_df)
