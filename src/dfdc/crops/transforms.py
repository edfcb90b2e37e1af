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
    """Blank out the eyes, the nose or the mouth, located by the 5 landmarks (crop pixels).
    Given where the crop was altered (``altered``: a mask of any size, its values the altered
    fraction), the part is drawn in proportion to its altered pixels, so the model learns to
    find the manipulation elsewhere too (the DFDC winner's mask-guided dropout)."""

    def __init__(self, p: float) -> None:
        self.p = p

    @staticmethod
    def part_boxes(landmarks: np.ndarray, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """(x1, y1, x2, y2) of the eyes' band, the nose and the mouth, clipped to ``shape``."""
        lm = np.asarray(landmarks, np.float32)
        eye_dist = float(np.linalg.norm(lm[1] - lm[0])) or shape[1] / 4
        parts = (
            (lm[[0, 1]], (0.45 * eye_dist, 0.22 * eye_dist)),  # both eyes: one band
            (lm[[2]], (0.3 * eye_dist, 0.3 * eye_dist)),  # nose
            (lm[[3, 4]], (0.3 * eye_dist, 0.25 * eye_dist)),  # mouth
        )
        return [
            (
                int(max(0, pts[:, 0].min() - hx)),
                int(max(0, pts[:, 1].min() - hy)),
                int(min(shape[1], pts[:, 0].max() + hx)),
                int(min(shape[0], pts[:, 1].max() + hy)),
            )
            for pts, (hx, hy) in parts
        ]

    def __call__(
        self,
        image: np.ndarray,
        landmarks: np.ndarray | None,
        rng: np.random.Generator,
        altered: np.ndarray | None = None,
    ) -> np.ndarray:
        if landmarks is None or self.p <= 0 or rng.random() >= self.p:
            return image
        boxes = self.part_boxes(landmarks, image.shape)
        if altered is not None and altered.any():
            full = cv2.resize(altered.astype(np.float32), image.shape[1::-1])
            weight = np.array([full[y1:y2, x1:x2].sum() for x1, y1, x2, y2 in boxes]) + 1e-6
            part = int(rng.choice(3, p=weight / weight.sum()))
        else:
            part = int(rng.integers(3))
        x1, y1, x2, y2 = boxes[part]
        out = image.copy()
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
    own generator, not numpy's global one). ``pairs``: a second image, ``image1`` (and mask,
    ``mask1``), gets the very same augmentation (a real crop and its fake of the same frame).
    Masks (``mask``) follow the geometric transforms only."""
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
            # Last before resizing, so adding it left the earlier transforms' draws unchanged.
            A.CoarseDropout(
                num_holes_range=(1, 3),
                hole_height_range=(0.1, 0.3),
                hole_width_range=(0.1, 0.3),
                fill="random_uniform",
                p=cfg.overlay_p,
            ),
            *_tail(size, mean, std),
        ],
        seed=seed,
        additional_targets={"image1": "image", "mask1": "mask"} if pairs else None,
    )


def eval_transform(size: int, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD) -> A.Compose:
    return A.Compose(_tail(size, mean, std))
