"""The train_sequence stage (DVC ``train_sequence@k``): one fold of the second run, the
``sequence`` section (per-frame embeddings from the same fold's frame model into an LSTM/GRU),
through the same loop as the frame run (:mod:`dfdc.training.loop`)."""

from __future__ import annotations

from dfdc.core.config import Params, run_config
from dfdc.training.loop import FitResult, fit

__all__ = ["SECTION", "FitResult", "run"]

SECTION = "sequence"


def run(params: Params, fold: int, smoke: bool = False) -> FitResult:
    """``smoke``: 2 batches an epoch, for tests of the wiring."""
    return fit(params, fold, run_config(params, SECTION), max_batches=2 if smoke else None)
