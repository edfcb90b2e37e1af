"""Public-domain face photographs that ship inside installed packages, with their landmarks.

Both are works of the US government: Grace Hopper's portrait (matplotlib's sample data) and the
astronaut Eileen Collins (scikit-image). Nothing is downloaded. The face boxes and 5 landmarks
are those the pipeline's MTCNN finds (:func:`detect_face`), so the swap aligns faces the way a
real face-swap tool would; they are recorded here rather than detected on every run because
MTCNN's float output moves in the fourth decimal with the CPU torch runs on, and the whole
sample would move with it. ``tests/data/test_sample.py`` checks the record against MTCNN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

__all__ = ["FACES", "Photo", "detect_face", "load_photos"]


@dataclass(frozen=True)
class Photo:
    name: str
    image: np.ndarray  # RGB uint8
    box: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners


# name -> (box, landmarks) in photo pixels, as facenet-pytorch 2.5.3's MTCNN found them
# (rounded to 1/100 pixel).
FACES: dict[str, tuple[tuple[float, ...], tuple[tuple[float, float], ...]]] = {
    "hopper": (
        (174.40, 119.56, 355.65, 340.46),
        ((221.67, 192.21), (309.83, 186.13), (269.36, 239.17), (232.65, 279.65), (306.64, 275.93)),
    ),
    "collins": (
        (181.05, 62.16, 267.75, 172.05),
        ((205.01, 101.73), (246.76, 103.71), (224.67, 128.96), (201.72, 139.25), (245.27, 141.86)),
    ),
}


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


LOADERS = {"hopper": _grace_hopper, "collins": _astronaut}


@cache
def load_photos() -> tuple[Photo, ...]:
    """The photos in actor-table order, with their recorded faces."""
    photos = []
    for name, loader in LOADERS.items():
        box, landmarks = FACES[name]
        photos.append(
            Photo(
                name=name,
                image=loader(),
                box=np.asarray(box, dtype=np.float32),
                landmarks=np.asarray(landmarks, dtype=np.float32),
            )
        )
    return tuple(photos)


def detect_face(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The most confident face's box and 5 landmarks by the pipeline's MTCNN (what
    :data:`FACES` records)."""
    from facenet_pytorch import MTCNN

    boxes, probs, points = MTCNN(keep_all=True, device="cpu").detect(image, landmarks=True)
    if boxes is None:
        raise RuntimeError("no face found in the photo")
    best = int(np.argmax(np.asarray(probs, dtype=float)))
    return np.asarray(boxes[best], np.float32), np.asarray(points[best], np.float32)
