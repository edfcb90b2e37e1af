"""Arithmetic that gives the same bits on every x86-64 CPU, for the sample generator.

The sample is a pure function of its seed, so a fresh clone on another machine must rebuild
the committed ``data/raw`` byte for byte. Three libraries pick their kernels by the CPU they
find at run time, and each once moved the sample's bytes (checked by emulating other CPUs on
one machine, ``tests/data/test_sample.py``):

- numpy's ``@`` and ``np.linalg.norm`` call OpenBLAS, whose kernel (Haswell with FMA,
  Prescott without, SkylakeX...) rounds a 2x2 product differently, so the landmarks and the
  face swap's transform moved with ``OPENBLAS_CORETYPE``. Transforms here are composed and
  applied with elementwise float64 operations (each rounded once, as IEEE 754 defines them),
  and the sines with Python's ``math`` rather than numpy's SIMD loops;
- OpenCV dispatches its float filters (``GaussianBlur``, ``resize``, ``warpAffine``) to SSE4,
  AVX2/FMA3 or AVX-512 code and to Intel IPP, whose sums round differently:
  :func:`opencv_baseline` runs them on the baseline code every x86-64 CPU executes alike;
- torch's convolutions (the MTCNN that found the photos' landmarks) depend on the CPU's
  vector width: the landmarks are recorded once (:mod:`dfdc.dataset.sample.photos`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

__all__ = ["apply", "compose", "distance", "opencv_baseline", "sin"]


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 affine ``a`` after ``b`` (float64), without BLAS."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.empty((2, 3), np.float64)
    for i in range(2):
        for j in range(3):
            out[i, j] = a[i, 0] * b[0, j] + a[i, 1] * b[1, j]
        out[i, 2] += a[i, 2]
    return out


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) mapped by the 2x3 affine ``m``, in float64, without BLAS."""
    m, p = np.asarray(m, np.float64), np.asarray(points, np.float64)
    x, y = p[:, 0], p[:, 1]
    return np.stack([m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]], 1)


def distance(p: np.ndarray, q: np.ndarray) -> float:
    """Euclidean distance of two 2-D points (one square root, correctly rounded)."""
    dx, dy = float(q[0]) - float(p[0]), float(q[1]) - float(p[1])
    return math.sqrt(dx * dx + dy * dy)


def sin(x: np.ndarray | float) -> np.ndarray:
    """Elementwise sine through the C library: numpy's own vector sine differs by CPU."""
    return np.array([math.sin(v) for v in np.ravel(x)], np.float64).reshape(np.shape(x))


@contextmanager
def opencv_baseline() -> Iterator[None]:
    """OpenCV without its CPU-dispatched kernels and IPP while the block runs (restored after):
    the same code, hence the same float rounding, on every x86-64 CPU."""
    before = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        yield
    finally:
        cv2.setUseOptimized(before)
