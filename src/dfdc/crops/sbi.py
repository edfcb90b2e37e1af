"""Self-blended pseudo-fakes (SBI: Shiohara and Yamasaki, CVPR 2022).

A real crop is blended with a transformed copy of itself (colour, resolution, a small scale and
shift) through a feathered, landmark-placed face mask, and labelled fake. The result carries
the traces every face swap and reenactment leaves (a blending boundary, a colour and sharpness
mismatch, a slight misalignment) on a face whose identity and scene the model also sees as
real, so the only thing that tells them apart is the manipulation itself: the reason SBI
generalises across datasets better than training on one generator's fakes.

Only the pixels inside the mask and its feathered edge change; outside, the crop is the real
one, byte for byte.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfdc.core.compositing import blend, ellipse_mask
from dfdc.core.config import SelfBlendConfig

__all__ = ["has_landmarks", "self_blend", "selfblend_mask"]


def has_landmarks(landmarks: np.ndarray | tuple, min_eye_dist: float = 0.02) -> bool:
    """Whether landmarks (5 points, any units where the crop side is 1 or more) can place a
    blend mask: all finite and the eyes apart by at least ``min_eye_dist`` of a unit side."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    return bool(np.isfinite(lm).all() and np.linalg.norm(lm[1] - lm[0]) >= min_eye_dist)


def selfblend_mask(
    landmarks: np.ndarray, shape: tuple[int, int], cfg: SelfBlendConfig, rng: np.random.Generator
) -> np.ndarray:
    """A random inner-face mask: the ellipse from eyes to below the mouth, its half-axes and
    centre jittered by ``cfg.mask_jitter``, its edge feathered by 5-25 % of the half-width,
    scaled by a blend ratio drawn from ``cfg.blend_ratios`` (SBI's partial blends)."""
    lm = np.asarray(landmarks, np.float32)
    eye = lm[:2].mean(0)
    mouth = lm[3:5].mean(0)
    eye_dist = float(np.linalg.norm(lm[1] - lm[0])) or shape[1] / 4
    eye_mouth = float(np.linalg.norm(mouth - eye)) or eye_dist
    j = cfg.mask_jitter
    axes = (
        max(1, int(round(eye_dist * rng.uniform(1 - j, 1 + j)))),
        max(1, int(round(eye_mouth * 1.2 * rng.uniform(1 - j, 1 + j)))),
    )
    centre = (eye + mouth) / 2 + (mouth - eye) * 0.1 + rng.normal(0, j * 0.1 * eye_dist, 2)
    sigma = max(1.0, axes[0] * rng.uniform(0.05, 0.25))
    mask = ellipse_mask(lm, shape, centre, axes, sigma)
    return mask * float(rng.choice(cfg.blend_ratios))


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray,
    cfg: SelfBlendConfig,
    rng: np.random.Generator,
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The self-blended version of ``image`` (RGB uint8; ``landmarks`` (5, 2) in its pixels),
    and with ``return_mask`` the blend mask (float32 in [0, 1]: the altered pixels). The mask
    is the first draw from ``rng``: ``selfblend_mask`` with a generator in the same state gives
    the mask that was used."""
    h, w = image.shape[:2]
    mask = selfblend_mask(landmarks, (h, w), cfg, rng)
    src = image.astype(np.float32)
    # Colour: a gain and a shift per channel (the swapped face's colour mismatch).
    gain = 1 + rng.uniform(-cfg.color_gain, cfg.color_gain, 3)
    src = src * gain.astype(np.float32) + rng.uniform(-cfg.color_shift, cfg.color_shift, 3)
    # Resolution: generated faces are rendered at another size (down then up), or sharpened.
    if rng.random() < cfg.resample_p:
        s = rng.uniform(*cfg.resample_range)
        small = cv2.resize(src, (max(2, int(w * s)), max(2, int(h * s))), cv2.INTER_LINEAR)
        src = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        src = src + rng.uniform(0.2, 1.0) * (src - cv2.GaussianBlur(src, (0, 0), 1.0))
    # Geometry: a small scale about the face and a shift (the landmark alignment's error).
    centre = np.asarray(landmarks, np.float32).mean(0)
    s = 1 + rng.uniform(-cfg.scale, cfg.scale)
    d = rng.uniform(-cfg.shift, cfg.shift, 2) * w
    m = np.float32([[s, 0, (1 - s) * centre[0] + d[0]], [0, s, (1 - s) * centre[1] + d[1]]])
    src = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = blend(image.astype(np.float32), np.clip(src, 0, 255), mask)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # Outside the mask's support the crop stays the real one exactly (no rounding drift).
    outside = mask <= 0
    out[outside] = image[outside]
    return (out, mask.astype(np.float32)) if return_mask else out
