"""MTCNN (facenet-pytorch; its weights ship in the wheel) on shrunken frames, batched per video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfdc.config import FacesConfig

__all__ = ["Detection", "Detector", "resolve_device"]


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # x1, y1, x2, y2 in full-resolution upright pixels
    prob: float
    landmarks: np.ndarray  # (5, 2)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _brighten(image: np.ndarray, dark_level: float) -> np.ndarray:
    """Lift a dark frame so MTCNN sees the face (gamma on the detection copy only)."""
    mean = float(image.mean())
    if mean >= dark_level or mean <= 0:
        return image
    gamma = np.log(dark_level / 255.0) / np.log(max(mean, 1.0) / 255.0)
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).clip(0, 255).astype(np.uint8)
    return lut[image]


class Detector:
    def __init__(self, cfg: FacesConfig, device: str = "cpu") -> None:
        from facenet_pytorch import MTCNN

        self.cfg = cfg
        self.device = resolve_device(device)
        self.mtcnn = MTCNN(
            keep_all=True,
            min_face_size=cfg.min_face_size,
            thresholds=list(cfg.thresholds),
            post_process=False,
            select_largest=False,
            device=self.device,
        )

    def detect(self, images: list[np.ndarray], full_sizes: list[tuple[int, int]]) -> list[list[Detection]]:
        """Detect on small RGB images; boxes come back in each frame's full-size pixels."""
        if not images:
            return []
        images = [_brighten(im, self.cfg.dark_level) for im in images]
        # MTCNN's min_face_size is in the pixels it sees; the param is in source pixels.
        scale = images[0].shape[1] / full_sizes[0][0]
        self.mtcnn.min_face_size = max(12, int(round(self.cfg.min_face_size * scale)))
        same = all(im.shape == images[0].shape for im in images)
        if same:
            batches = [np.stack(images)]
        else:  # pragma: no cover - frames of one video share a size
            batches = [im[None] for im in images]
        results: list[list[Detection]] = []
        for batch in batches:
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
            for b, p, lm, im, (fw, fh) in zip(boxes, probs, points, batch, full_sizes, strict=False):
                s = fw / im.shape[1]
                found = []
                if b is not None:
                    b = np.asarray(b, dtype=np.float32) * s
                    p = np.asarray(p, dtype=np.float32)
                    lm = np.asarray(lm, dtype=np.float32) * s
                    for k in range(len(b)):
                        if p[k] >= self.cfg.min_prob:
                            box = b[k].copy()
                            box[[0, 2]] = box[[0, 2]].clip(0, fw)
                            box[[1, 3]] = box[[1, 3]].clip(0, fh)
                            found.append(Detection(box, float(p[k]), lm[k]))
                results.append(found)
        return results
