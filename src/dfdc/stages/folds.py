"""The folds stage: every labelled video of the index -> its group k-fold (an original and its
fakes always share one; :mod:`dfdc.dataset.folds`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dfdc.core.config import Params
from dfdc.core.io import write_parquet
from dfdc.dataset.folds import make_folds

__all__ = ["FoldsResult", "run"]


@dataclass
class FoldsResult:
    folds: pd.DataFrame
    path: Path


def run(params: Params) -> FoldsResult:
    folds = make_folds(pd.read_parquet(params.data.index_path), params.cv)
    write_parquet(folds, params.cv.path)
    return FoldsResult(folds, Path(params.cv.path))
