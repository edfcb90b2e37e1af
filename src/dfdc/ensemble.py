"""Out-of-fold scoring, model averaging, calibration, and the submission with its record.

Everything fitted here (run weights, temperature, clip bound) is fitted on out-of-fold
predictions only, and each is also scored *nested*: fitted on the other folds and applied to
the held-out fold, so the table shows what fitting gains without the optimism of scoring on the
data it was fitted to.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar
from tqdm.auto import tqdm

from dfdc.core.config import EnsembleConfig, FacesConfig, Params, to_dict
from dfdc.core.io import write_json, write_text
from dfdc.core.metrics import binary_metrics, log_loss
from dfdc.core.provenance import git_revision, sha256_file
from dfdc.inference.aggregate import compare_rules, video_score
from dfdc.inference.blend import Ensemble, logit, sigmoid

log = logging.getLogger(__name__)

__all__ = [
    "Ensemble",
    "EnsembleResult",
    "fit_ensemble",
    "load_oof",
    "make_submission",
    "run",
    "test_truth",
]


def load_oof(models_dir: str | Path, runs: tuple[str, ...]) -> pd.DataFrame:
    frames = []
    for run in runs:
        files = sorted((Path(models_dir) / run).glob("fold*/oof.parquet"))
        if not files:
            raise FileNotFoundError(
                f"{Path(models_dir) / run}: no fold*/oof.parquet (train this run first)"
            )
        for f in files:
            frames.append(pd.read_parquet(f).assign(run=run))
    return pd.concat(frames, ignore_index=True)


def run_matrix(oof: pd.DataFrame, rule: str, faces: str) -> pd.DataFrame:
    """One row a video, one column a run: the video score under ``rule``/``faces``."""
    oof = oof.assign(
        score=[
            video_score(p, t, rule, faces)
            for p, t in zip(oof["frame_probs"], oof["tracks"], strict=True)
        ]
    )
    wide = oof.pivot_table(index="video", columns="run", values="score")
    meta = oof.drop_duplicates("video").set_index("video")[["label", "fold", "part", "original"]]
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


def _fit_temperature(p: np.ndarray, y: np.ndarray, prior_videos: int) -> float:
    """Temperature by out-of-fold log loss, its logarithm shrunk toward 0 by n / (n + prior):
    few videos cannot support much sharpening (or softening); many can."""
    z = logit(p)
    res = minimize_scalar(
        lambda lt: log_loss(y, sigmoid(z / np.exp(lt))), bounds=(-3, 3), method="bounded"
    )
    n = len(y)
    return float(np.exp(res.x * n / (n + max(0, prior_videos))))


def _fit(scores: np.ndarray, y: np.ndarray, cfg: EnsembleConfig, runs: list[str]) -> Ensemble:
    weights = (
        _fit_weights(scores, y)
        if cfg.fit_weights
        else np.full(scores.shape[1], 1 / scores.shape[1])
    )
    ens = Ensemble(runs, [float(w) for w in weights], cfg.rule, cfg.faces)
    if cfg.temperature:
        ens.temperature = _fit_temperature(ens.apply(scores), y, cfg.temperature_prior_videos)
    curve = {c: log_loss(y, np.clip(ens.apply(scores), c, 1 - c)) for c in cfg.clip_grid}
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


def fit_ensemble(oof: pd.DataFrame, cfg: EnsembleConfig) -> FitReport:
    rules = compare_rules(oof[oof["run"] == cfg.runs[0]])
    matrix = run_matrix(oof, cfg.rule, cfg.faces)
    runs = [r for r in cfg.runs if r in matrix.columns]
    scores, y, folds = (
        matrix[runs].to_numpy(),
        matrix["label"].to_numpy(),
        matrix["fold"].to_numpy(),
    )
    equal = Ensemble(runs, [1 / len(runs)] * len(runs), cfg.rule, cfg.faces)
    final = _fit(scores, y, cfg, runs)
    nested = np.zeros(len(y))
    for f in np.unique(folds):
        held = folds == f
        nested[held] = _fit(scores[~held], y[~held], cfg, runs).apply(scores[held])
    # Each run alone, then the blend: the same videos, the same calibration, side by side
    # (with a frame run and a sequence run, this is the frame-vs-temporal comparison).
    rows = []
    if len(runs) > 1:
        for i, run in enumerate(runs):
            single = np.zeros(len(y))
            for f in np.unique(folds):
                held = folds == f
                col = scores[:, [i]]
                single[held] = _fit(col[~held], y[~held], cfg, [run]).apply(col[held])
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


def cv_metrics(report: FitReport, index: pd.DataFrame) -> dict:
    """The numbers in metrics/cv.json: overall (nested), per part, per manipulation method."""
    m = report.matrix.assign(prob=report.oof_prob)
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
    if m["method"].notna().any() and m["method"].nunique() > 1:
        # Each method against the reals, so AUC means something per method.
        reals = m[m["label"] == 0]
        out["per_method"] = {
            k: binary_metrics(pd.concat([g, reals])["label"], pd.concat([g, reals])["prob"])
            for k, g in m[m["label"] == 1].groupby("method")
        }
    return out


def test_truth(params: Params, index: pd.DataFrame) -> pd.Series:
    """Test video name -> 1 (FAKE) / 0 (REAL), where known: the sample's hidden
    ``test_labels.csv``, else the index's own labels of the test split (FaceForensics++
    test.json, Celeb-DF's list)."""
    labels = Path(params.data.raw_dir) / "test_labels.csv"
    if labels.exists():
        return pd.read_csv(labels).set_index("filename")["label"].astype(int)
    test = index[(index["split"] == "test") & index["label"].notna()]
    return pd.Series((test["label"] == "FAKE").astype(int).to_numpy(), index=test["name"])


def make_submission(
    test_paths: list[Path],
    order: list[str],
    bundle,
    out_path: str | Path,
    faces: FacesConfig | None = None,
) -> pd.DataFrame:
    """``filename,label`` for every file of ``order`` scored by ``bundle`` (an
    :class:`~dfdc.inference.predict.InferenceBundle`; on Ray actors with ``faces.executor:
    ray``); a video that fails scores 0.5."""
    by_name = {p.name: p for p in test_paths}
    probs, failed = {}, [n for n in order if n not in by_name]
    present = [n for n in order if n in by_name]
    with tqdm(total=len(present), desc="test videos", unit="video") as bar:
        preds = bundle.score_all([by_name[n] for n in present], faces, lambda _: bar.update())
    for name, pred in zip(present, preds, strict=True):
        if pred.status != "ok":
            failed.append(name)
            continue
        probs[name] = pred.prob
    for name in failed:
        probs[name] = 0.5
    if failed:
        log.warning(
            "%d of %d test videos failed or had no face and score 0.5: %s",
            len(failed),
            len(order),
            failed[:5],
        )
    # Whatever the ensemble says, no printed answer is exactly 0 or 1 (6 decimals).
    labels = np.clip([probs[n] for n in order], 1e-6, 1 - 1e-6)
    sub = pd.DataFrame({"filename": order, "label": labels})
    write_text(sub.to_csv(index=False, float_format="%.6f"), out_path)
    return sub


@dataclass
class EnsembleResult:
    report: FitReport
    metrics: dict  # what metrics/cv.json holds
    submission: pd.DataFrame
    test: dict  # metrics/test.json: scores against the test videos' labels when known
    record: dict  # the registry entry


def run(params: Params, smoke: bool = False) -> EnsembleResult:
    """The ensemble stage: cv.json, plots data, ensemble.json, submission.csv, registry entry."""
    from dfdc.inference.predict import load_bundle

    cfg = params.ensemble
    index = pd.read_parquet(params.data.index_path)
    oof = load_oof(params.base.models_dir, cfg.runs)
    report = fit_ensemble(oof, cfg)
    metrics = cv_metrics(report, index)
    write_json(metrics, cfg.metrics_path)
    report.ensemble.save(cfg.ensemble_path)
    _write_plots(report, Path(cfg.plots_dir))

    raw = Path(params.data.raw_dir)
    test = index[index["split"] == "test"]
    test_paths = [Path(p) for p in test["path"]]
    sample_sub = raw / "sample_submission.csv"
    order = (
        pd.read_csv(sample_sub)["filename"].tolist()
        if sample_sub.exists()
        else sorted(test["name"])
    )
    if smoke:
        order = order[:2]
    bundle = load_bundle(params.base.models_dir, params.base.device, ensemble=report.ensemble)
    sub = make_submission(test_paths, order, bundle, cfg.submission_path, params.faces)

    test_metrics: dict = {"available": False}
    truth = test_truth(params, index)
    if len(truth):
        scored = sub[sub["filename"].isin(truth.index)]
        test_metrics = {
            "available": True,
            **binary_metrics(truth[scored["filename"]].to_numpy(), scored["label"]),
        }
    write_json(test_metrics, cfg.test_metrics_path)

    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": git_revision(),
        "dvc_lock_sha256": sha256_file(Path("dvc.lock")),
        "submission_sha256": sha256_file(Path(cfg.submission_path)),
        "params": to_dict(params),
        "cv": {k: metrics[k] for k in ("logloss", "auc", "accuracy", "n_videos")},
        "test": test_metrics,
        "ensemble": asdict(report.ensemble),
    }
    stamp = record["created"].replace(":", "").replace("-", "")
    write_json(
        record, Path(cfg.registry_dir) / f"{stamp}_{record['git']['revision'][:8] or 'norev'}.json"
    )
    return EnsembleResult(report, metrics, sub, test_metrics, record)


def _write_plots(report: FitReport, out: Path) -> None:
    """Small CSVs that ``dvc plots show`` draws (ROC, reliability, clip curve)."""
    from sklearn.metrics import roc_curve

    y, p = report.matrix["label"].to_numpy(), report.oof_prob
    out.mkdir(parents=True, exist_ok=True)
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        write_text(pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(index=False), out / "roc.csv")
    bins = np.clip((p * 10).astype(int), 0, 9)
    rel = (
        pd.DataFrame({"bin": bins, "p": p, "y": y})
        .groupby("bin")
        .agg(predicted=("p", "mean"), observed=("y", "mean"))
    )
    write_text(rel.reset_index().to_csv(index=False), out / "reliability.csv")
    write_text(report.clip_curve.to_csv(index=False), out / "clip.csv")
