"""Cross-dataset evaluation, the research protocol: score every labelled video of other
datasets (any supported layout) with the fitted ensemble, through the one inference path, and
report video-level AUC, log loss, accuracy, EER and AP overall and per dataset, manipulation
method and compression, and the frame-level AUC beside (every scored crop with its video's
label, the members' frame scores averaged: DeepfakeBench's frame protocol; ``faces.frames``
sets the frames a video, 32 by default).

``dfdc evaluate PATH...`` runs it on any folders; the ``evaluate`` stage
(:mod:`dfdc.stages.evaluate`) on ``evaluate.sets``.
A labelled video that cannot be scored (its file missing, a broken link or a symlink loop, or
unreadable) is named once and counted, never the end of the run and never silently left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dfdc.core.config import FacesConfig
from dfdc.core.curves import method_metrics
from dfdc.core.metrics import binary_metrics
from dfdc.core.progress import progress
from dfdc.dataset.layouts import file_problem, labelled_entries

log = logging.getLogger(__name__)

__all__ = ["BREAKDOWN", "EvalResult", "evaluate_paths", "metrics_table"]

BREAKDOWN = ("dataset", "method", "compression")


@dataclass
class EvalResult:
    scores: pd.DataFrame  # one row a scored video: name, path, set, dataset, method, ... prob
    failed: list[tuple[str, str]] = field(default_factory=list)  # unreadable: (path, reason)
    trained_on: str = ""  # what the scoring models were trained on, one line
    # Labelled videos whose file is missing or cannot be opened (a broken link, a symlink
    # loop): (path, reason), counted, never silently left out.
    missing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unscored(self) -> list[dict]:
        """Every labelled video without a score: path, status (missing, unreadable), reason."""
        return [
            {"path": p, "status": status, "reason": r}
            for status, rows in (("missing", self.missing), ("unreadable", self.failed))
            for p, r in rows
        ]

    def counts_line(self) -> str:
        """The one line every view of the result prints: scored, unreadable and missing of
        the labelled videos."""
        labelled = len(self.scores) + len(self.failed) + len(self.missing)
        return (
            f"{len(self.scores)} videos scored, {len(self.failed)} unreadable, "
            f"{len(self.missing)} missing (of {labelled} labelled)"
        )

    def summary(self) -> dict:
        """Overall metrics at the top level, a ``by`` breakdown, the videos not scored (named,
        with their reasons, and counted: ``failed`` is all of them), and what the models were
        trained on."""
        s = self.scores
        out = {
            **_metrics(s),
            "labelled": len(s) + len(self.failed) + len(self.missing),
            "scored": len(s),
            "unreadable": len(self.failed),
            "missing": len(self.missing),
            "failed": len(self.failed) + len(self.missing),
            "unscored": self.unscored,
            "trained_on": self.trained_on,
            "by": {},
        }
        for key in BREAKDOWN:
            out["by"][key] = {str(k): _metrics(g, s) for k, g in s.groupby(key, dropna=True)}
        out["by"]["set"] = {str(k): _metrics(g) for k, g in s.groupby("set")}
        return out


def _metrics(g: pd.DataFrame, all_scores: pd.DataFrame | None = None) -> dict:
    """Metrics of a group of videos; a group of fakes only (one method) is scored against the
    reals of the same dataset(s), so its AUC means something."""
    if all_scores is not None and g["label"].nunique() == 1 and g["label"].iloc[0] == 1:
        reals = all_scores[(all_scores["label"] == 0) & all_scores["dataset"].isin(g["dataset"])]
        m = method_metrics(g, reals)
        m["frame_auc"] = _frame_auc(pd.concat([g, reals]))
    else:
        m = binary_metrics(g["label"].to_numpy(), g["prob"].to_numpy())
        m["frame_auc"] = _frame_auc(g)
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in m.items()}


def _frame_auc(g: pd.DataFrame) -> float:
    """AUC over every scored crop of the group's videos, each labelled as its video."""
    if "frame_prob" not in g or not len(g):
        return float("nan")
    probs = [np.asarray(p, float) for p in g["frame_prob"]]
    labels = np.concatenate([np.full(len(p), y) for p, y in zip(probs, g["label"], strict=True)])
    return binary_metrics(labels, np.concatenate(probs))["auc"] if len(labels) else float("nan")


def metrics_table(summary: dict) -> pd.DataFrame:
    """The summary as one table: overall, then per set, dataset, method and compression."""
    keys = ("auc", "frame_auc", "logloss", "accuracy", "eer", "ap", "n")
    rows = [{"group": "all", "value": "", **{k: summary[k] for k in keys}}]
    for by in ("set", *BREAKDOWN):
        for value, m in summary["by"].get(by, {}).items():
            rows.append({"group": by, "value": value, **{k: m[k] for k in keys}})
    return pd.DataFrame(rows)


def evaluate_paths(bundle, paths: list[str | Path], faces: FacesConfig | None = None) -> EvalResult:
    """Score every labelled video under each path with ``bundle`` (an
    :class:`~dfdc.inference.predict.InferenceBundle`; on Ray actors with ``faces.executor:
    ray``)."""
    rows, failed, missing, jobs = [], [], [], []
    log.info("%s", bundle.trained_on)
    for p in paths:
        for e in labelled_entries(Path(p), missing=True):
            problem = file_problem(e.path)
            if problem is None:
                jobs.append((Path(p), e))
            else:
                missing.append((str(e.path), problem))
    with progress(total=len(jobs), desc="evaluate", unit="video") as bar:
        preds = bundle.score_all([e.path for _, e in jobs], faces, lambda _: bar.update())
    # Each unscored video is named once, by whoever shows the result (the CLI's error lines,
    # the stage's log), not here as well.
    for (root, e), pred in zip(jobs, preds, strict=True):
        if pred.status == "unreadable":
            failed.append((str(e.path), str(pred.reason)))
            continue
        rows.append(
            {
                "set": str(root),
                "name": e.name,
                "path": str(e.path),
                "dataset": e.dataset,
                "method": e.method or ("original" if e.label == "REAL" else None),
                "compression": e.compression,
                "split": e.split,
                "label": int(e.label == "FAKE"),
                "status": pred.status,
                "prob": pred.prob,
                # The members' frame scores averaged, crop by crop (frame-level AUC).
                "frame_prob": np.mean(list(pred.frame_probs.values()), axis=0).tolist()
                if pred.frame_probs
                else [],
            }
        )
    return EvalResult(pd.DataFrame(rows), failed, bundle.trained_on, missing)
