"""The ``faces`` section: frame sampling, detection, tracking and crop storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ranged

__all__ = ["FacesConfig"]


@dataclass(frozen=True)
class FacesConfig:
    """Face extraction: frame sampling, MTCNN, tracking and crop storage."""

    out_dir: str = "data/interim/faces"
    table_path: str = "data/interim/faces.parquet"
    status_path: str = "data/interim/faces_status.parquet"
    # Frames sampled evenly over each video.
    frames: int = ranged(32, 1, 10_000)
    # MTCNN runs on the whole frame for every k-th sampled frame (and the last one); in
    # between, each track's interpolated box is refined by MTCNN's O-Net, refine_steps times
    # (0: interpolation alone).
    detect_every: int = ranged(8, 1, 10_000)
    refine_steps: int = ranged(2, 0, 10)
    # The frame is shrunk so its longer side is at most this before detection.
    detect_max_side: int = ranged(640, 32, 8192)
    # In pixels of the detection image, so it scales with the source: 30 is 90 px at 1080p.
    min_face_size: int = ranged(30, 4, 4096)
    thresholds: tuple[float, float, float] = ranged((0.6, 0.7, 0.8), 0, 1)
    min_prob: float = ranged(0.9, 0, 1)
    # Detection copies darker than this mean level are brightened (gamma) before MTCNN.
    dark_level: float = ranged(60.0, 0, 255)
    # Whole-frame detector: mtcnn; blazeface (MediaPipe's full-range model, offline; far
    # faster); both (MTCNN's faces that BlazeFace confirms: fewer false positives). Tracking,
    # refinement between detections (MTCNN's O-Net) and crops are the same for each.
    detector: Literal["mtcnn", "blazeface", "both"] = "mtcnn"
    blazeface_min_score: float = ranged(0.6, 0, 1)
    # BlazeFace also on an n x n grid of overlapping tiles (0: the whole frame only), for
    # faces far from the camera.
    windows: int = ranged(0, 0, 8)
    # Tracking: IoU to link a detection to a track, and how short a track may be.
    track_iou: float = ranged(0.3, 0, 1)
    max_gap: int = ranged(2, 0, 10_000)
    min_track_fraction: float = ranged(0.3, 0, 1)
    max_tracks: int = ranged(2, 1, 100)
    # Fakes take the boxes of their original when it was extracted (DFDC fakes are aligned).
    reuse_original_boxes: bool = True
    # Crops: margin around the box on each side, as a fraction of the box size.
    margin: float = ranged(0.3, 0, 2)
    crop_size: int = ranged(224, 16, 1024)
    crop_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: int = ranged(95, 1, 100)
    workers: int = ranged(2, 1, 256)
    # Which splits to extract in the pipeline (test faces are made on the fly at inference).
    splits: tuple[str, ...] = ("train",)
    # Where extraction (and scoring many videos) runs: pool, a local process pool of
    # ``workers``; ray, Ray actors (``workers`` of them, one model each) on the Ray instance at
    # ray_address: local (a private one on this machine), auto (the cluster this node joined)
    # or ray://host:10001. Inputs and outputs must be paths every worker can read.
    executor: Literal["pool", "ray"] = "pool"
    ray_address: str = "local"
