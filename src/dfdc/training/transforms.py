"""Augmentation and preprocessing of face crops (albumentations).

The DFDC private test set re-encoded, resized, blurred and re-lit its videos; the models that
held up had been trained against exactly that: compression, noise, blur, resolution loss,
brightness and colour changes, small geometric jitter, and faces with a part missing (the
winner's landmark-guided dropout, so the model cannot rely on one tell-tale region).
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from dfdc.core.config import AugConfig

__all__ = ["FacePartDropout", "eval_transform", "train_transform"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FacePartDropout:
    """Blank out the eyes, the nose or the mouth, located by the 5 landmarks (crop pixels)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(
        self, image: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator
    ) -> np.ndarray:
        if landmarks is None or self.p <= 0 or rng.random() >= self.p:
            return image
        lm = np.asarray(landmarks, np.float32)
        eye_dist = float(np.linalg.norm(lm[1] - lm[0])) or image.shape[1] / 4
        part = rng.integers(3)
        out = image.copy()
        if part == 0:  # both eyes: one band along the eye line
            pts = lm[[0, 1]]
            half = (0.45 * eye_dist, 0.22 * eye_dist)
        elif part == 1:  # nose
            pts = lm[[2]]
            half = (0.3 * eye_dist, 0.3 * eye_dist)
        else:  # mouth
            pts = lm[[3, 4]]
            half = (0.3 * eye_dist, 0.25 * eye_dist)
        x1 = int(max(0, pts[:, 0].min() - half[0]))
        x2 = int(min(image.shape[1], pts[:, 0].max() + half[0]))
        y1 = int(max(0, pts[:, 1].min() - half[1]))
        y2 = int(min(image.shape[0], pts[:, 1].max() + half[1]))
        out[y1:y2, x1:x2] = 0
        return out


def _tail(size: int, mean: tuple, std: tuple) -> list:
    return [
        A.Resize(size, size, interpolation=cv2.INTER_AREA),
        A.Normalize(mean=mean, std=std),
        ToTensorV2(),
    ]


def train_transform(
    cfg: AugConfig,
    size: int,
    mean: tuple = IMAGENET_MEAN,
    std: tuple = IMAGENET_STD,
    seed: int | None = None,
    pairs: bool = False,
) -> A.Compose:
    """``seed`` makes the augmentation stream reproducible (albumentations 2 draws from its
    own generator, not numpy's global one). ``pairs``: a second image, ``image1``, gets the
    very same augmentation (a real crop and its fake of the same frame)."""
    return A.Compose(
        [
            A.ImageCompression(quality_range=cfg.jpeg_quality, p=cfg.jpeg_p),
            A.GaussNoise(std_range=(0.01, 0.05), p=cfg.noise_p),
            A.GaussianBlur(blur_limit=(3, 7), p=cfg.blur_p),
            A.HorizontalFlip(p=cfg.flip_p),
            A.Downscale(
                scale_range=cfg.downscale_range,
                interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
                p=cfg.downscale_p,
            ),
            A.OneOf(
                [
                    A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2),
                    A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=20, val_shift_limit=15),
                ],
                p=cfg.color_p,
            ),
            A.ToGray(p=cfg.gray_p),
            A.Affine(
                scale=(0.9, 1.1),
                translate_percent=(-0.05, 0.05),
                rotate=(-cfg.rotate_limit, cfg.rotate_limit),
                border_mode=cv2.BORDER_CONSTANT,
                p=cfg.affine_p,
            ),
            *_tail(size, mean, std),
        ],
        seed=seed,
        additional_targets={"image1": "image"} if pairs else None,
    )


def eval_transform(size: int, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD) -> A.Compose:
    return A.Compose(_tail(size, mean, std))
