"""The ``cv`` section: the grouped folds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ConfigError, ranged

__all__ = ["CvConfig"]


@dataclass(frozen=True)
class CvConfig:
    """Group k-fold: an original and all its fakes always share a fold."""

    n_folds: int = ranged(4, 2, 1000)
    # part: DFDC folder (as the winners split, e.g. 40 parts train / 10 validation);
    # original: clusters of an original and its fakes; auto: part when there are enough parts.
    group_by: Literal["auto", "part", "original"] = "auto"
    seed: int = ranged(42, 0, 2**32 - 1)
    path: str = "data/interim/folds.parquet"
    # The folds the train stage runs (DVC foreach); kept apart so adding one reruns only it.
    folds: tuple[int, ...] = ranged((0, 1, 2, 3), 0, 1000, hi_open=True)

    def check_fold(self, fold: int) -> None:
        """A one-line error unless ``fold`` is one of the ``n_folds`` folds (``--fold K``)."""
        if not 0 <= fold < self.n_folds:
            raise ConfigError(
                f"fold {fold}: cv.n_folds is {self.n_folds}, so a fold is one of "
                f"0..{self.n_folds - 1}"
            )
