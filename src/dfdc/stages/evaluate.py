"""The evaluate stage: the labelled sets of ``evaluate.sets`` (any supported layout) scored by the
fitted ensemble (:mod:`dfdc.reports.evaluation`) into ``metrics/eval.json``, with ROC and
reliability tables per set for ``dvc plots``, and the pooled headline beside it
(:mod:`dfdc.core.headline`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dfdc.core.config import Params
from dfdc.core.curves import reliability_table, roc_table
from dfdc.core.headline import eval_headline, write_headline
from dfdc.core.io import write_json, write_text
from dfdc.inference.predict import bundle_from_params
from dfdc.reports.evaluation import EvalResult, evaluate_paths

log = logging.getLogger(__name__)

__all__ = ["EvalResult", "run"]


def run(params: Params) -> EvalResult:
    cfg = params.evaluate
    out = Path(cfg.plots_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.sets:
        result = EvalResult(pd.DataFrame(columns=["set", "label", "prob"]))
        write_json({"sets": [], "n": 0}, cfg.metrics_path)
        write_headline(eval_headline(None), cfg.metrics_path)
        # The stage's declared plot files exist even when there is nothing to draw.
        write_text("set,fpr,tpr\n", out / "roc.csv")
        write_text("bin,predicted,observed,set\n", out / "reliability.csv")
        return result
    bundle = bundle_from_params(params, ensemble=params.ensemble.ensemble_path)
    result = evaluate_paths(bundle, list(cfg.sets), params.faces)
    for row in result.unscored:  # each named once; eval.json lists them too
        log.error("%s: %s (%s)", row["path"], row["reason"], row["status"])
    log.info("evaluate: %s", result.counts_line())
    summary = result.summary()
    write_json({"sets": list(cfg.sets), **summary}, cfg.metrics_path)
    write_headline(eval_headline(summary), cfg.metrics_path)
    _write_plots(result.scores, out)
    return result


def _write_plots(scores: pd.DataFrame, out: Path) -> None:
    frames_roc, frames_rel = [], []
    for name, g in scores.groupby("set"):
        y, p = g["label"].to_numpy(), g["prob"].to_numpy()
        roc = roc_table(y, p)
        if roc is not None:
            frames_roc.append(roc.assign(set=name)[["set", "fpr", "tpr"]])
        frames_rel.append(reliability_table(y, p).assign(set=name))
    if frames_roc:
        write_text(pd.concat(frames_roc).to_csv(index=False), out / "roc.csv")
    if frames_rel:
        write_text(pd.concat(frames_rel).to_csv(index=False), out / "reliability.csv")
