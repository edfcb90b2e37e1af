"""Headline metrics: the few figures ``dvc metrics show`` and ``dvc exp show`` compare.

A stage keeps its detail JSON (per part, per method, per distortion level, the ensemble's rules
compared) for the notebooks, the docs and the tests, as a plain output. Beside it, under
``headline/``, it writes the figures a competitor compares runs by, and only those are DVC
metrics (161 values from 8 files made a table 4,781 characters wide).

Every headline key is unique across the files, named for its set (``logloss`` and ``auc`` out
of fold, ``test_logloss``, ``eval_logloss``, ``distorted_logloss``): ``dvc exp show`` prefixes a
key that two files share with the file's path (``metrics/headline/cv.json:logloss``, too wide
for a terminal), and ``dvc metrics show`` gives every key a column, so the keys are few and
short (``tests/project/test_views.py`` holds both tables to their widths).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dfdc.core.io import write_json

__all__ = [
    "KEYS",
    "cv_headline",
    "eval_headline",
    "headline",
    "headline_path",
    "robustness_headline",
    "submission_headline",
    "write_headline",
]

# The competition metric and the ranking metric.
KEYS = ("logloss", "auc")


def headline_path(detail_path: str | Path) -> Path:
    """Where the headline of a detail file goes: ``metrics/cv.json`` ->
    ``metrics/headline/cv.json`` (so a redirected work folder keeps both together)."""
    p = Path(detail_path)
    return p.parent / "headline" / p.name


def headline(
    metrics: Mapping[str, Any] | None, prefix: str = "", keys: Sequence[str] = KEYS
) -> dict[str, float | None]:
    """``keys`` of ``metrics`` named ``prefix + key``; a missing set (``None``: no labelled
    test videos, no evaluation set) or a NaN (a ranking metric of one class) is null, which DVC
    shows as ``-``."""
    out = {}
    for k in keys:
        v = None if metrics is None else metrics.get(k)
        out[prefix + k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    return out


def cv_headline(cv: Mapping[str, Any]) -> dict:
    """The ensemble's out-of-fold figures (``metrics/cv.json``'s nested log loss and AUC): the
    unprefixed keys, the ones to sort experiments by."""
    return headline(cv)


def submission_headline(test: Mapping[str, Any]) -> dict:
    """The submission scored against the test videos' labels, where they are known."""
    return headline(test if test.get("available") else None, "test_")


def eval_headline(summary: Mapping[str, Any] | None) -> dict:
    """The evaluation sets pooled, log loss only (AUC and each set apart stay in
    ``metrics/eval.json``): a seventh column would not fit 120."""
    return headline(summary, "eval_", ("logloss",))


def robustness_headline(report: Mapping[str, Any]) -> dict:
    """The robustness report in one figure: the mean log loss over every scored distortion
    level (``metrics/robustness.json`` keeps the clean scores, each level and the changes)."""
    losses = [
        m["logloss"]
        for entry in report["distortions"].values()
        for m in entry["levels"].values()
        if m.get("n")
    ]
    mean = sum(losses) / len(losses) if losses else None
    return headline({"logloss": mean}, "distorted_", ("logloss",))


def write_headline(values: Mapping[str, Any], detail_path: str | Path) -> Path:
    """Write ``values`` as the headline of ``detail_path``; returns its path."""
    path = headline_path(detail_path)
    write_json(dict(values), path)
    return path
