"""From frame scores to one video score: the rules the ensemble stage compares out of fold.

A video's faces are scored frame by frame; how those scores become one number matters for log
loss as much as the model does. Rules over the frames of one face track:

- ``mean``: the plain mean;
- ``confident``: the DFDC winner's rule: when enough frames are confidently fake, the mean of
  those; when nearly all are confidently real, the mean of those; else the plain mean;
- ``weighted``: a mean weighted by each frame's confidence ``|p - 0.5|``.

Several faces in one video combine by ``max`` (a video is fake if any face is) or ``mean``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from dfdc.core.metrics import binary_metrics

if TYPE_CHECKING:  # pandas is imported where a table is made (a cold start needs none)
    import pandas as pd

__all__ = ["RULES", "aggregate_frames", "compare_rules", "video_score"]

Rule = Literal["mean", "confident", "weighted"]
RULES: tuple[str, ...] = ("mean", "confident", "weighted")


def aggregate_frames(
    p: Sequence[float],
    rule: Rule = "mean",
    fake_threshold: float = 0.8,
    real_threshold: float = 0.2,
    min_fake_share: float = 0.4,
    min_fake_frames: int = 11,
    min_real_share: float = 0.9,
) -> float:
    """One track's score from its frame scores (0.5 when there are none)."""
    p = np.asarray(p, float)
    if p.size == 0:
        return 0.5
    if rule == "mean":
        return float(p.mean())
    if rule == "weighted":
        w = np.abs(p - 0.5) + 1e-3
        return float((w * p).sum() / w.sum())
    if rule == "confident":
        fakes = p > fake_threshold
        # The winner used 32 frames: "more than 40 % and more than 11 frames".
        if fakes.sum() > min_fake_share * p.size and fakes.sum() > min_fake_frames:
            return float(p[fakes].mean())
        reals = p < real_threshold
        if reals.sum() > min_real_share * p.size:
            return float(p[reals].mean())
        return float(p.mean())
    raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {', '.join(RULES)}")


def video_score(
    probs: Sequence[float],
    tracks: Sequence[int],
    rule: Rule = "mean",
    faces_combine: Literal["max", "mean"] = "max",
    **kw,
) -> float:
    """Aggregate each face track, then combine the tracks."""
    probs, tracks = np.asarray(probs, float), np.asarray(tracks)
    if probs.size == 0:
        return 0.5
    per_track = [aggregate_frames(probs[tracks == t], rule, **kw) for t in np.unique(tracks)]
    return float(max(per_track) if faces_combine == "max" else np.mean(per_track))


def compare_rules(oof: pd.DataFrame, **kw) -> pd.DataFrame:
    """Every rule x face-combination on out-of-fold predictions (``frame_probs``, ``tracks``,
    ``label`` columns): log loss, AUC, accuracy, best first."""
    rows = []
    for rule in RULES:
        for faces_combine in ("max", "mean"):
            scores = [
                video_score(p, t, rule, faces_combine, **kw)
                for p, t in zip(oof["frame_probs"], oof["tracks"], strict=True)
            ]
            rows.append(
                {
                    "rule": rule,
                    "faces_combine": faces_combine,
                    **binary_metrics(oof["label"], scores),
                }
            )
    import pandas as pd

    return pd.DataFrame(rows).sort_values("logloss").reset_index(drop=True)
