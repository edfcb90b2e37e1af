"""The ``ensemble`` section: out-of-fold fitting, calibration and the submission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dfdc.core.typed import ConfigError, ranged

__all__ = ["EnsembleConfig"]


@dataclass(frozen=True)
class EnsembleConfig:
    """Out-of-fold scoring, model averaging, calibration and the submission."""

    runs: tuple[str, ...] = ("baseline",)
    # Frame-to-video rule and how several faces combine (see dfdc.inference.aggregate).
    rule: Literal["mean", "confident", "weighted"] = "mean"
    faces_combine: Literal["max", "mean"] = "max"
    # Run weights fitted on out-of-fold log loss (else equal); temperature scaling; clip bound
    # chosen on out-of-fold log loss from clip_grid.
    fit_weights: bool = True
    temperature: bool = True
    # A sharpening fitted log-temperature (below 1) is shrunk toward 0 by n / (n + this), n the
    # out-of-fold videos: 24 videos cannot justify sharpening a 4,000-video submission. A
    # softening one (the models overconfident out of fold) is kept as fitted.
    temperature_prior_videos: int = ranged(200, 0, 10**9)
    # What the temperature and the clip bound minimise: the log loss of every out-of-fold
    # video together (pooled), or of the worst group of them (worst: the originals and each
    # compressed copy level apart), so the calibration holds on the hardest kind of input the
    # fit has seen, not on the average (docs/real-data.md, "Never confidently wrong").
    calibrate_on: Literal["pooled", "worst"] = "pooled"
    # Frames a video is scored on (0: every frame the faces stage samples, faces.frames): the
    # out-of-fold scores are cut to this many of their frames, evenly spaced, before the fit,
    # and dfdc predict, evaluate, the kernel and the web page then sample this many, so the
    # calibration is fitted on what scoring will see. Fewer frames score faster
    # (benchmarks/frames.py measures both; docs/ensemble.md). A sequence run's out-of-fold
    # score is one a track, unchanged by the cut, though scoring then gives it a sparser track
    # (its training drops every other step at sequence.rate_p): its fit is an approximation.
    frames: int = ranged(0, 0, 100_000)
    # Fit on the out-of-fold scores of the compressed copies too (the compress stage's
    # validation levels, as videos of their own), so the calibration is not fitted on clean
    # videos only; cv.json reports the originals and each level apart.
    copies: bool = True
    # Clip bounds; none below min_clip, so no answer is ever 0 or 1 (one confident miss at
    # p = 1e-15 costs 34.5 nats of log loss; at 0.005, 5.3).
    clip_grid: tuple[float, ...] = ranged(
        (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2), 0, 0.5, hi_open=True
    )  # each at least min_clip
    min_clip: float = ranged(0.005, 1e-6, 0.5, hi_open=True)
    submission_path: str = "submissions/submission.csv"
    ensemble_path: str = "submissions/ensemble.json"
    registry_dir: str = "submissions/registry"
    metrics_path: str = "metrics/cv.json"
    test_metrics_path: str = "metrics/test.json"
    plots_dir: str = "metrics/plots"

    def __post_init__(self) -> None:
        low = [c for c in self.clip_grid if c < self.min_clip]
        if low or not self.clip_grid:
            raise ConfigError(
                f"ensemble.clip_grid: every bound must be >= ensemble.min_clip "
                f"({self.min_clip}); got {list(self.clip_grid)}"
            )
