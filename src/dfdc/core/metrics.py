"""The competition metric and its companions, on video-level probabilities (FAKE = 1)."""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "binary_metrics", "log_loss"]

# Probabilities are clipped away from 0 and 1 before the log, as sklearn does.
EPS = 1e-7


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = EPS) -> float:
    """Mean binary cross-entropy, natural log: the DFDC leaderboard metric."""
    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {
        "logloss": log_loss(y, p),
        "auc": auc,
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "n": int(len(y)),
    }
