"""The train stage (DVC ``train@k``): one fold of the frame run in the ``train`` section,
through the one training loop (:mod:`dfdc.training.loop`)."""

from __future__ import annotations

from dfdc.core.config import Params, run_config
from dfdc.training.loop import FitResult, fit

__all__ = ["SECTION", "FitResult", "run"]

SECTION = "train"


def run(params: Params, fold: int, smoke: bool = False) -> FitResult:
    """``smoke``: 2 batches an epoch, for tests of the wiring."""
    return fit(params, fold, run_config(params, SECTION), max_batches=2 if smoke else None)
