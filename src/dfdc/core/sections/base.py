"""The ``base`` section: what every stage shares (seed, device, where runs live)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ranged

__all__ = ["BaseConfig"]


@dataclass(frozen=True)
class BaseConfig:
    seed: int = ranged(42, 0, 2**32 - 1)
    # "auto" takes CUDA when present; the CPU path is what the tests and the sample use.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Every run's folds, curves and out-of-fold predictions: <models_dir>/<run>/...
    models_dir: str = "models"
