"""Fitting the ensemble on out-of-fold predictions: run weights, temperature, clip bound.

Everything fitted here (run weights, temperature, clip bound) is fitted on out-of-fold
predictions only, and each is also scored *nested*: fitted on the other folds and applied to
the held-out fold, so the table shows what fitting gains without the optimism of scoring on the
data it was fitted to.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from dfdc.core.config import EnsembleConfig
from dfdc.core.curves import method_metrics
from dfdc.core.layout import copy_oof_files, oof_files
from dfdc.core.metrics import binary_metrics, log_loss
from dfdc.core.video import even_indices
from dfdc.inference.aggregate import compare_rules, video_score
from dfdc.inference.ensemble import Ensemble, logit, sigmoid

log = logging.getLogger(__name__)

__all__ = ["FitReport", "cv_metrics", "fewer_frames", "fit_ensemble", "load_oof", "score_matrix"]


def load_oof(models_dir: str | Path, runs: tuple[str, ...], copies: bool = False) -> pd.DataFrame:
    """Every run's out-of-fold rows (``copy`` ""); with ``copies``, also the rows of their
    compressed copies' out-of-fold tables, as videos of their own (``name@level``, ``copy``
    the level) in the same folds, so calibration sees the degraded videos too. A level only
    some runs have is left out (the blend needs every run's score)."""
    frames = []
    for run in runs:
        files = oof_files(models_dir, run)
        if not files:
            raise FileNotFoundError(
                f"{Path(models_dir) / run}: no fold*/oof.parquet (train this run first)"
            )
        for f in files:
            frames.append(pd.read_parquet(f).assign(run=run, copy=""))
    if copies:
        found = {run: copy_oof_files(models_dir, run) for run in runs}
        shared = set.intersection(*({lv for lv, _ in found[r]} for r in runs))
        for run in runs:
            for level, f in found[run]:
                if level in shared:
                    rows = pd.read_parquet(f)
                    frames.append(
                        rows.assign(video=rows["video"] + f"@{level}", run=run, copy=level)
                    )
    return pd.concat(frames, ignore_index=True)


def score_matrix(oof: pd.DataFrame, rule: str, faces_combine: str) -> pd.DataFrame:
    """One row a video, one column a run: the video score under ``rule``/``faces_combine``."""
    oof = oof.assign(
        score=[
            video_score(p, t, rule, faces_combine)
            for p, t in zip(oof["frame_probs"], oof["tracks"], strict=True)
        ]
    )
    wide = oof.pivot_table(index="video", columns="run", values="score")
    cols = ["label", "fold", "part", "original"] + (["copy"] if "copy" in oof else [])
    meta = oof.drop_duplicates("video").set_index("video")[cols]
    return meta.join(wide, how="inner")


def _fit_weights(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = scores.shape[1]
    if k == 1:
        return np.ones(1)

    def loss(z: np.ndarray) -> float:
        w = np.exp(z - z.max())
        return log_loss(y, scores @ (w / w.sum()))

    z = minimize(loss, np.zeros(k), method="L-BFGS-B").x
    w = np.exp(z - z.max())
    return w / w.sum()


def _calibration_loss(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None) -> float:
    """What the temperature and the clip bound minimise: the log loss of all the videos
    (``groups`` None), or of the worst of the groups (the originals and each compressed copy
    level): a calibration that must hold on every kind of input, not on their average."""
    if groups is None:
        return log_loss(y, p)
    return max(log_loss(y[groups == g], p[groups == g]) for g in np.unique(groups))


def _fit_temperature(
    p: np.ndarray, y: np.ndarray, prior_videos: int, groups: np.ndarray | None = None
) -> float:
    """Temperature by out-of-fold log loss (of the worst group, with ``groups``). A sharpening
    one (below 1) has its logarithm shrunk toward 0 by n / (n + prior): few videos cannot
    support much sharpening, and a sharpened miss is what log loss punishes hardest. A
    softening one is kept as fitted: out-of-fold scores that say the models are overconfident
    are the warning to heed (the models trained on real FaceForensics++ clips wanted 1.5-1.9 on
    every run, shrunk to 1.17-1.29 that left them overconfident on the compressed copies;
    docs/robustness.md)."""
    z = logit(p)

    def loss(lt: float) -> float:
        return _calibration_loss(y, sigmoid(z / np.exp(lt)), groups)

    # The worst group's loss is a maximum of curves: a coarse grid first, so the bounded
    # search starts in the right basin.
    grid = np.linspace(-3, 3, 61)
    at = grid[int(np.argmin([loss(g) for g in grid]))]
    res = minimize_scalar(loss, bounds=(max(-3, at - 0.1), min(3, at + 0.1)), method="bounded")
    n = len(y)
    shrink = n / (n + max(0, prior_videos)) if res.x < 0 else 1.0
    return float(np.exp(res.x * shrink))


def _fit(
    scores: np.ndarray,
    y: np.ndarray,
    cfg: EnsembleConfig,
    runs: list[str],
    groups: np.ndarray | None = None,
) -> Ensemble:
    fitted = (
        _fit_weights(scores, y)
        if cfg.fit_weights
        else np.full(scores.shape[1], 1 / scores.shape[1])
    )
    weights = [float(w) for w in fitted]
    ens = Ensemble(runs, weights, cfg.rule, cfg.faces_combine, frames=cfg.frames)
    groups = groups if cfg.calibrate_on == "worst" else None
    if cfg.temperature:
        ens.temperature = _fit_temperature(
            ens.apply(scores), y, cfg.temperature_prior_videos, groups
        )
    p = ens.apply(scores)
    curve = {c: _calibration_loss(y, np.clip(p, c, 1 - c), groups) for c in cfg.clip_grid}
    ens.clip = float(min(curve, key=lambda c: (curve[c], c)))
    return ens


@dataclass
class FitReport:
    ensemble: Ensemble
    table: pd.DataFrame  # rows: equal weights / fitted in-sample / fitted nested
    rules: pd.DataFrame
    oof_prob: np.ndarray  # the nested (honest) out-of-fold probabilities
    matrix: pd.DataFrame
    clip_curve: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def fewer_frames(oof: pd.DataFrame, n: int) -> pd.DataFrame:
    """``oof`` with every video cut to ``n`` of its scored frames, evenly spaced (first and
    last kept, as the faces stage spreads its samples), each frame's crops (one a face track)
    kept together; ``n`` 0, or at least a video's frames, keeps that video whole."""
    if n <= 0:
        return oof
    columns: dict[str, list] = {"frames": [], "frame_probs": [], "tracks": []}
    for f, p, t in zip(oof["frames"], oof["frame_probs"], oof["tracks"], strict=True):
        f, p, t = np.asarray(f), np.asarray(p), np.asarray(t)
        sampled = np.unique(f)
        keep = np.isin(f, sampled[even_indices(len(sampled), n)])
        for name, values in (("frames", f), ("frame_probs", p), ("tracks", t)):
            columns[name].append(values[keep])
    return oof.assign(**columns)


def fit_ensemble(oof: pd.DataFrame, cfg: EnsembleConfig) -> FitReport:
    oof = fewer_frames(oof, cfg.frames)
    first = oof[oof["run"] == cfg.runs[0]]
    rules = compare_rules(first[first["copy"] == ""] if "copy" in first else first)
    matrix = score_matrix(oof, cfg.rule, cfg.faces_combine)
    runs = [r for r in cfg.runs if r in matrix.columns]
    scores, y, folds = (
        matrix[runs].to_numpy(),
        matrix["label"].to_numpy(),
        matrix["fold"].to_numpy(),
    )
    # The originals ("") and each copy level: the groups a worst-group calibration protects.
    groups = matrix["copy"].to_numpy(str) if "copy" in matrix else np.full(len(y), "")
    equal = Ensemble(
        runs, [1 / len(runs)] * len(runs), cfg.rule, cfg.faces_combine, frames=cfg.frames
    )
    final = _fit(scores, y, cfg, runs, groups)
    nested = np.zeros(len(y))
    for f in np.unique(folds):
        held = folds == f
        nested[held] = _fit(scores[~held], y[~held], cfg, runs, groups[~held]).apply(scores[held])
    # Each run alone, then the blend: the same videos, the same calibration, side by side
    # (with a frame run and a sequence run, this is the frame-vs-temporal comparison).
    rows = []
    if len(runs) > 1:
        for i, run in enumerate(runs):
            single = np.zeros(len(y))
            for f in np.unique(folds):
                held = folds == f
                col = scores[:, [i]]
                single[held] = _fit(col[~held], y[~held], cfg, [run], groups[~held]).apply(
                    col[held]
                )
            rows.append(
                {"ensemble": f"{run} alone, no calibration", **binary_metrics(y, scores[:, i])}
            )
            rows.append(
                {"ensemble": f"{run} alone, calibrated nested by fold", **binary_metrics(y, single)}
            )
    blend = "blend of " + " + ".join(runs) + ": " if len(runs) > 1 else ""
    table = pd.DataFrame(
        [
            *rows,
            {
                "ensemble": f"{blend}equal weights, no calibration",
                **binary_metrics(y, equal.apply(scores)),
            },
            {
                "ensemble": f"{blend}fitted, scored in-sample",
                **binary_metrics(y, final.apply(scores)),
            },
            {"ensemble": f"{blend}fitted, scored nested by fold", **binary_metrics(y, nested)},
            *_subsets(matrix, nested, f"{blend}fitted, scored nested by fold"),
        ]
    )
    unclipped = Ensemble(**{**asdict(final), "clip": 0.0}).apply(scores)
    clip_curve = pd.DataFrame(
        {
            "clip": list(cfg.clip_grid),
            "logloss": [log_loss(y, np.clip(unclipped, c, 1 - c)) for c in cfg.clip_grid],
        }
    )
    return FitReport(final, table, rules, nested, matrix, clip_curve)


def _subsets(matrix: pd.DataFrame, prob: np.ndarray, name: str) -> list[dict]:
    """With compressed copies among the rows: the originals and each level, apart."""
    if "copy" not in matrix or not (matrix["copy"] != "").any():
        return []
    rows = []
    for level, idx in matrix.groupby("copy", sort=True).indices.items():
        what = f"{level} copies" if level else "originals"
        rows.append({"ensemble": f"{name}: {what}",
                     **binary_metrics(matrix["label"].to_numpy()[idx], prob[idx])})  # fmt: skip
    return rows


def cv_metrics(report: FitReport, index: pd.DataFrame) -> dict:
    """The numbers in metrics/cv.json: overall (nested), per part, per manipulation method,
    on the original videos; each compressed copy level's apart (``copies``), when the fit
    included them."""
    m = report.matrix.assign(prob=report.oof_prob)
    copies = {}
    if "copy" in m:
        copies = {
            level: binary_metrics(g["label"], g["prob"])
            for level, g in m[m["copy"] != ""].groupby("copy", sort=True)
        }
        m = m[m["copy"] == ""]
    method = index.set_index("name")["method"] if "method" in index else pd.Series(dtype=object)
    m["method"] = [
        method.get(v) if isinstance(method.get(v), str) else ("original" if lab == 0 else None)
        for v, lab in zip(m.index, m["label"], strict=True)
    ]
    overall = binary_metrics(m["label"], m["prob"])
    out = {
        "logloss": overall["logloss"],
        "auc": overall["auc"],
        "accuracy": overall["accuracy"],
        "n_videos": overall["n"],
        "per_part": {p: binary_metrics(g["label"], g["prob"]) for p, g in m.groupby("part")},
        "ensemble": asdict(report.ensemble),
        "comparison": report.table.to_dict(orient="records"),
        "rules": report.rules.to_dict(orient="records"),
    }
    if copies:
        out["copies"] = copies
    if m["method"].notna().any() and m["method"].nunique() > 1:
        # Each method against the reals, so AUC means something per method.
        reals = m[m["label"] == 0]
        out["per_method"] = {
            k: method_metrics(g, reals) for k, g in m[m["label"] == 1].groupby("method")
        }
    return out
