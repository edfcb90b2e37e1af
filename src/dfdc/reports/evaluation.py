"""Cross-dataset evaluation, the research protocol: score every labelled video of other
datasets (any supported layout) with the fitted ensemble, through the one inference path, and
report video-level AUC, log loss, accuracy, EER and AP overall and per dataset, manipulation
method and compression, and the frame-level AUC beside (every scored crop with its video's
label, the members' frame scores averaged: DeepfakeBench's frame protocol; ``faces.frames``
sets the frames a video, 32 by default).

``dfdc evaluate PATH...`` runs it on any folders; the ``evaluate`` stage
(:mod:`dfdc.stages.evaluate`) on ``evaluate.sets``.
An unreadable video is a line on stderr and a count, never the end of the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from dfdc.core.progress import progress

from dfdc.core.config import FacesConfig
from dfdc.core.curves import method_metrics
from dfdc.core.metrics import binary_metrics
from dfdc.dataset.layouts import labelled_entries

log = logging.getLogger(__name__)

__all__ = ["BREAKDOWN", "EvalResult", "evaluate_paths", "metrics_table"]

BREAKDOWN = ("dataset", "method", "compression")


@dataclass
class EvalResult:
    scores: pd.DataFrame  # one row a scored video: name, path, set, dataset, method, ... prob
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    trained_on: str = ""  # what the scoring models were trained on, one line

    def summary(self) -> dict:
        """Overall metrics at the top level, a ``by`` breakdown, the failures, and what the
        models were trained on."""
        s = self.scores
        out = {**_metrics(s), "failed": len(self.failed), "trained_on": self.trained_on, "by": {}}
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
    rows, failed = [], []
    log.info("%s", bundle.trained_on)
    jobs = [(Path(p), e) for p in paths for e in labelled_entries(Path(p))]
    with progress(total=len(jobs), desc="evaluate", unit="video") as bar:
        preds = bundle.score_all([e.path for _, e in jobs], faces, lambda _: bar.update())
    for (root, e), pred in zip(jobs, preds, strict=True):
        if pred.status == "unreadable":
            log.error("%s: %s", e.path, pred.reason)
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
    if failed:
        log.warning(
            "%d of %d videos could not be read (scored 0.5 nowhere)", len(failed), len(jobs)
        )
    return EvalResult(pd.DataFrame(rows), failed, bundle.trained_on)
