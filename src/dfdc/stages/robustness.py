"""The robustness stage: the workspace's held-out videos re-encoded under the DFDC black-box
distortions (:mod:`dfdc.robustness`), each scored by the fitted ensemble's models that never
trained on it, into ``metrics/robustness.json``, its headline (:mod:`dfdc.core.headline`) and one
plot table a distortion."""

from __future__ import annotations

import logging
from dataclasses import replace

from dfdc.core.config import Params, RobustnessConfig
from dfdc.core.headline import robustness_headline, write_headline
from dfdc.core.io import write_json
from dfdc.core.layout import fold_of
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.predict import InferenceBundle, bundle_from_params
from dfdc.robustness.report import (
    ALL,
    RobustnessResult,
    example_clips,
    failure_lines,
    held_out_jobs,
    robustness_metrics,
    score_jobs,
    write_plots,
)

__all__ = ["RobustnessResult", "resolved", "run"]

log = logging.getLogger(__name__)

# robustness.videos auto, a held-out group: the sample's make repro budget; for real data
# enough to mean something (8 a fold: 32 videos over 4 folds) at a re-encode a video a level.
AUTO_VIDEOS = {"sample": 2, "real": 8}


def resolved(params: Params) -> RobustnessConfig:
    """``robustness`` with ``videos: auto`` made a number for the data source."""
    cfg = params.robustness
    if cfg.videos != "auto":
        return cfg
    source = "sample" if params.data.source == "sample" else "real"
    return replace(cfg, videos=AUTO_VIDEOS[source])


def run(params: Params) -> RobustnessResult:
    cfg = resolved(params)
    ensemble = Ensemble.load(params.ensemble.ensemble_path)
    jobs = held_out_jobs(params, cfg)

    def bundle_for(group: str) -> InferenceBundle:
        fold = None if group == ALL else fold_of(group)
        return bundle_from_params(params, ensemble=ensemble, fold=fold)

    scores = score_jobs(jobs, bundle_for, cfg, cfg.out_dir)
    metrics = robustness_metrics(scores, cfg)
    for line in failure_lines(metrics):  # each once; counted in the JSON's "failed"
        log.error("%s", line)
    write_json(metrics, cfg.metrics_path)
    write_headline(robustness_headline(metrics), cfg.metrics_path)
    write_plots(metrics, cfg.plots_dir)
    return RobustnessResult(scores, metrics, example_clips(cfg, cfg.out_dir, jobs))
