"""Face manipulations that leave the traces real deepfakes leave.

Both methods paste a face-shaped region back through a feathered mask, so a fake carries a
blending boundary, a colour mismatch smoothed by colour transfer, and a little independent
jitter in every frame (the temporal flicker that per-frame generators show). Outside the mask
the fake is the original, pixel for pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfdc.core.compositing import blend, ellipse_mask
from dfdc.dataset.sample.exact import compose, distance
from dfdc.dataset.sample.photos import Photo

__all__ = ["face_mask", "self_blend", "swap_face"]


def face_mask(
    landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Feathered inner-face ellipse (float32 in [0, 1]) with per-frame jitter."""
    eye_dist = distance(landmarks[0], landmarks[1])
    centre = landmarks.mean(axis=0) + rng.normal(0, 0.6, size=2)
    axes = (
        int(round(1.05 * eye_dist * (1 + rng.normal(0, 0.03)))),
        int(round(1.35 * eye_dist * (1 + rng.normal(0, 0.03)))),
    )
    return ellipse_mask(landmarks, shape, centre, axes, max(1.0, 0.12 * eye_dist))


def _colour_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the source's per-channel mean and spread to the target's inside the mask (LAB)."""
    weights = mask > 0.5
    if weights.sum() < 16:
        return source
    src = cv2.cvtColor(np.clip(source, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(
        np.float32
    )
    tgt = cv2.cvtColor(np.clip(target, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(
        np.float32
    )
    s_mean, s_std = src[weights].mean(0), src[weights].std(0) + 1e-3
    t_mean, t_std = tgt[weights].mean(0), tgt[weights].std(0) + 1e-3
    out = (src - s_mean) * (t_std / s_std) + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def _jitter(
    m: np.ndarray, centre: np.ndarray, rng: np.random.Generator, shift: float, zoom: float
) -> np.ndarray:
    """Compose a small random shift and zoom about ``centre`` onto the 2x3 transform ``m``."""
    s = 1 + rng.normal(0, zoom)
    d = rng.normal(0, shift, size=2)
    j = np.array(
        [[s, 0, (1 - s) * centre[0] + d[0]], [0, s, (1 - s) * centre[1] + d[1]]], np.float32
    )
    return compose(j, m).astype(np.float32)


def swap_face(
    clean: np.ndarray,
    target_landmarks: np.ndarray,
    source: Photo,
    source_flip: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """Paste ``source``'s face onto the face at ``target_landmarks``, aligned on 5 landmarks."""
    image, src_lm = source.image, source.landmarks.copy()
    if source_flip:
        w = image.shape[1]
        image = np.ascontiguousarray(image[:, ::-1])
        src_lm = src_lm[[1, 0, 2, 4, 3]]
        src_lm[:, 0] = w - 1 - src_lm[:, 0]
    m, _ = cv2.estimateAffinePartial2D(src_lm, target_landmarks, method=cv2.LMEDS)
    m = _jitter(m.astype(np.float32), target_landmarks.mean(0), rng, shift=0.7, zoom=0.01)
    h, w = clean.shape[:2]
    warped = cv2.warpAffine(image.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
    mask = face_mask(target_landmarks, (h, w), rng)
    warped = _colour_transfer(warped, clean, mask)
    return blend(clean, warped, mask)


def self_blend(
    clean: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
    """Blend the face with a colour- and scale-jittered copy of itself (self-blended image)."""
    h, w = clean.shape[:2]
    identity = np.float32([[1, 0, 0], [0, 1, 0]])
    m = _jitter(identity, landmarks.mean(0), rng, shift=1.0 * strength, zoom=0.015 * strength)
    # A steady resize of the face, as a generator working at another resolution leaves.
    centre = landmarks.mean(0)
    zoom = 1.03
    z = np.float32([[zoom, 0, (1 - zoom) * centre[0]], [0, zoom, (1 - zoom) * centre[1]]])
    m = compose(z, m)
    copy = cv2.warpAffine(clean, m, (w, h), flags=cv2.INTER_LINEAR)
    gain = 1 + rng.normal(0, 0.02, size=3) * strength + np.array([0.05, -0.02, -0.04])
    copy = copy * gain.astype(np.float32) + rng.normal(0, 3) * strength
    # Lose a little detail, as generated faces do.
    copy = cv2.GaussianBlur(copy, (0, 0), 0.8)
    mask = face_mask(landmarks, (h, w), rng)
    return blend(clean, copy, mask)
