"""The competition metric and its companions, on video-level probabilities (FAKE = 1)."""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "binary_metrics", "equal_error_rate", "log_loss"]

# Probabilities are clipped away from 0 and 1 before the log, as sklearn does.
EPS = 1e-7


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = EPS) -> float:
    """Mean binary cross-entropy, natural log: the DFDC leaderboard metric."""
    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def equal_error_rate(y: np.ndarray, p: np.ndarray) -> float:
    """The error rate where false positives and false negatives are equally frequent (the
    research papers' EER), read off the ROC curve with linear interpolation."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    if i > 0 and (fnr[i] - fpr[i]) * (fnr[i - 1] - fpr[i - 1]) < 0:
        # Where fnr - fpr changes sign between i-1 and i: the crossing point.
        a, b = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
        t = a / (a - b)
        return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    return float((fpr[i] + fnr[i]) / 2)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Log loss, AUC, accuracy at 0.5, EER, average precision (FAKE positive), n; the
    ranking metrics are NaN when only one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    both = len(np.unique(y)) == 2
    return {
        "logloss": log_loss(y, p),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "eer": equal_error_rate(y, p) if both else float("nan"),
        "ap": float(average_precision_score(y, p)) if both else float("nan"),
        "n": int(len(y)),
    }
