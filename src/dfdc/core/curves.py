"""The numbers every report draws: ROC and reliability tables, and a manipulation method's
metrics against the reals; one place for the ensemble's, evaluation's and the notebooks'."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dfdc.core.metrics import binary_metrics

__all__ = ["method_metrics", "reliability_table", "roc_table"]


def roc_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame | None:
    """``fpr, tpr`` of the ROC curve; None when ``y`` holds one class (no curve to draw)."""
    from sklearn.metrics import roc_curve

    y, p = np.asarray(y), np.asarray(p)
    if len(np.unique(y)) != 2:
        return None
    fpr, tpr, _ = roc_curve(y, p)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """``bin, predicted, observed``: the mean predicted probability and the fraction of fakes
    in each of ``bins`` equal-width probability bins that holds a video."""
    p = np.asarray(p)
    b = np.clip((p * bins).astype(int), 0, bins - 1)
    rel = pd.DataFrame({"bin": b, "p": p, "y": np.asarray(y)}).groupby("bin")
    return rel.agg(predicted=("p", "mean"), observed=("y", "mean")).reset_index()


def method_metrics(fakes: pd.DataFrame, reals: pd.DataFrame) -> dict:
    """One manipulation method's fakes scored against ``reals`` (``label``, ``prob``
    columns), so its AUC means something: a group of fakes alone has no ROC."""
    both = pd.concat([fakes, reals])
    return binary_metrics(both["label"].to_numpy(), both["prob"].to_numpy())
