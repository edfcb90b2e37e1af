"""The robustness stage: the workspace's held-out videos re-encoded under the DFDC black-box
distortions (:mod:`dfdc.robustness`), each scored by the fitted ensemble's models that never
trained on it, into ``metrics/robustness.json`` and one plot table a distortion."""

from __future__ import annotations

from dfdc.core.config import Params
from dfdc.core.io import write_json
from dfdc.core.layout import fold_of
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.predict import InferenceBundle, bundle_from_params
from dfdc.robustness.report import (
    ALL,
    RobustnessResult,
    example_clips,
    held_out_jobs,
    robustness_metrics,
    score_jobs,
    write_plots,
)

__all__ = ["RobustnessResult", "run"]


def run(params: Params) -> RobustnessResult:
    cfg = params.robustness
    ensemble = Ensemble.load(params.ensemble.ensemble_path)
    jobs = held_out_jobs(params, cfg)

    def bundle_for(group: str) -> InferenceBundle:
        fold = None if group == ALL else fold_of(group)
        return bundle_from_params(params, ensemble=ensemble, fold=fold)

    scores = score_jobs(jobs, bundle_for, cfg, cfg.out_dir)
    metrics = robustness_metrics(scores, cfg)
    write_json(metrics, cfg.metrics_path)
    write_plots(metrics, cfg.plots_dir)
    return RobustnessResult(scores, metrics, example_clips(cfg, cfg.out_dir, jobs))
