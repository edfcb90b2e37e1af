"""The package stage: the offline Kaggle kernel and its two datasets (models, code), built from
this package and the fitted ensemble's checkpoints (:mod:`dfdc.inference.kernel`), with a
timed projection of the 4,000 test videos against the 9-hour budget."""

from __future__ import annotations

from dfdc.core.config import Params
from dfdc.inference.kernel import PackageResult, build_kernel

__all__ = ["PackageResult", "run"]


def run(params: Params, smoke: bool = False) -> PackageResult:
    """``smoke``: time one test video instead of ``package.time_videos``."""
    return build_kernel(params, time_videos=1 if smoke else None)
