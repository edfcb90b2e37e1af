"""Face-shaped masks and blending, shared by the sample generator's fakes and the self-blended
pseudo-fakes of training (:mod:`dfdc.crops.sbi`).

Both paste a face region back through a feathered ellipse placed by the 5 landmarks (eyes,
nose, mouth corners): the landmarks every detector here gives. A denser mesh would give a
tighter hull; the ellipse covers the inner face that face swaps and reenactment replace.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["blend", "ellipse_mask"]


def ellipse_mask(
    landmarks: np.ndarray,
    shape: tuple[int, int],
    centre: np.ndarray,
    axes: tuple[int, int],
    sigma: float,
) -> np.ndarray:
    """Feathered ellipse (float32 in [0, 1], ``shape`` = (h, w)) centred at ``centre`` with
    half-axes ``axes`` (pixels), turned to the eye line, edge blurred by a Gaussian of
    ``sigma`` pixels."""
    left_eye, right_eye = landmarks[0], landmarks[1]
    # The C library's atan2: numpy's ufunc may take a CPU-dispatched vector loop (SVML on
    # AVX-512), and the generated sample must not depend on the CPU (docs/sample.md).
    angle = math.degrees(
        math.atan2(float(right_eye[1] - left_eye[1]), float(right_eye[0] - left_eye[0]))
    )
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), axes, angle, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def blend(base: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``face`` inside ``mask``, ``base`` outside (float32)."""
    m = mask[..., None]
    return base * (1 - m) + face * m
