"""Public-domain face photographs that ship inside installed packages, with their landmarks.

Both are works of the US government: Grace Hopper's portrait (matplotlib's sample data) and the
astronaut Eileen Collins (scikit-image). Nothing is downloaded. Landmarks come from the same
MTCNN the pipeline uses, run once per photo, so the swap aligns faces the way a real face-swap
tool would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

__all__ = ["Photo", "load_photos"]


@dataclass(frozen=True)
class Photo:
    name: str
    image: np.ndarray  # RGB uint8
    box: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@cache
def load_photos() -> tuple[Photo, ...]:
    from facenet_pytorch import MTCNN

    detector = MTCNN(keep_all=True, device="cpu")
    photos = []
    for name, loader in (("hopper", _grace_hopper), ("collins", _astronaut)):
        image = loader()
        boxes, probs, points = detector.detect(image, landmarks=True)
        if boxes is None:  # pragma: no cover - the photos are fixed
            raise RuntimeError(f"no face found in the bundled photo {name}")
        best = int(np.argmax(np.asarray(probs, dtype=float)))
        photos.append(
            Photo(
                name=name,
                image=image,
                box=np.asarray(boxes[best], dtype=np.float32),
                landmarks=np.asarray(points[best], dtype=np.float32),
            )
        )
    return tuple(photos)
