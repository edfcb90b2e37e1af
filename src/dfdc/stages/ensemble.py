"""The ensemble stage: fit the ensemble out of fold (:mod:`dfdc.inference.fit`), score the test
videos into the submission (:mod:`dfdc.inference.submission`), and record both: cv.json,
test.json and their headlines (:mod:`dfdc.core.headline`), the plot tables, ensemble.json and a
registry entry.

The registry entry names what the stage read by content (``inputs``: the video index and every
fold's ``best.pt`` and out-of-fold tables, each with its sha256), not by ``dvc.lock``: under
``dvc repro`` the lock is still being written while this stage runs (its digest then named no
state anyone could check out), and the files read are what the submission came from."""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from dfdc.core.config import Params, to_dict
from dfdc.core.curves import reliability_table, roc_table
from dfdc.core.headline import cv_headline, submission_headline, write_headline
from dfdc.core.io import write_json, write_text
from dfdc.core.metrics import binary_metrics
from dfdc.core.provenance import git_revision, sha256_file
from dfdc.inference.export import export_fitted
from dfdc.inference.fit import FitReport, cv_metrics, fit_ensemble, load_oof
from dfdc.inference.predict import bundle_from_params, resolve_engine
from dfdc.inference.submission import make_submission, test_order, test_truth
from dfdc.reports.video_report import mistake_reports

__all__ = ["EnsembleResult", "mistake_gallery", "oof_videos", "run"]


@dataclass
class EnsembleResult:
    report: FitReport
    metrics: dict  # what metrics/cv.json holds
    submission: pd.DataFrame
    test: dict  # metrics/test.json: scores against the test videos' labels when known
    record: dict  # the registry entry
    trained_on: str  # what the fold models were trained on, one line


def run(params: Params, smoke: bool = False) -> EnsembleResult:
    """``smoke``: two test videos only."""
    cfg = params.ensemble
    index = pd.read_parquet(params.data.index_path)
    oof = load_oof(params.base.models_dir, cfg.runs, copies=cfg.copies)
    report = fit_ensemble(oof, cfg)
    metrics = cv_metrics(report, index)
    write_json(metrics, cfg.metrics_path)
    write_headline(cv_headline(metrics), cfg.metrics_path)
    report.ensemble.save(cfg.ensemble_path)
    _write_plots(report, Path(cfg.plots_dir))

    test = index[index["split"] == "test"]
    test_paths = [Path(p) for p in test["path"]]
    order = test_order(params.data.raw_dir, test["name"].tolist())
    if smoke:
        order = order[:2]
    with tempfile.TemporaryDirectory(prefix="dfdc-export-") as tmp:
        scoring, inf = params, params.inference
        if resolve_engine(inf.engine, params.base.device) == "onnx":
            # The export stage comes after this one: export for the test set.
            export_fitted(params.base.models_dir, report.ensemble, tmp)
            scoring = replace(params, inference=replace(inf, export_dir=tmp))
        bundle = bundle_from_params(scoring, ensemble=report.ensemble)
        sub = make_submission(test_paths, order, bundle, cfg.submission_path, params.faces)

    test_metrics: dict = {"available": False}
    truth = test_truth(params.data.raw_dir, index)
    if len(truth):
        scored = sub[sub["filename"].isin(truth.index)]
        test_metrics = {
            "available": True,
            **binary_metrics(truth[scored["filename"]].to_numpy(), scored["label"]),
        }
    write_json(test_metrics, cfg.test_metrics_path)
    write_headline(submission_headline(test_metrics), cfg.test_metrics_path)

    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": git_revision(),
        "inputs": _inputs(params),
        "submission_sha256": sha256_file(Path(cfg.submission_path)),
        "params": to_dict(params),
        "trained_on": bundle.trained_on,
        "cv": {k: metrics[k] for k in ("logloss", "auc", "accuracy", "n_videos")},
        "test": test_metrics,
        "ensemble": asdict(report.ensemble),
    }
    stamp = record["created"].replace(":", "").replace("-", "")
    write_json(
        record, Path(cfg.registry_dir) / f"{stamp}_{record['git']['revision'][:8] or 'norev'}.json"
    )
    return EnsembleResult(report, metrics, sub, test_metrics, record, bundle.trained_on)


def _inputs(params: Params) -> dict[str, str | None]:
    """The files the ensemble was fitted and scored from, path -> sha256: the video index, and
    each run's fold checkpoints and out-of-fold tables."""
    models = Path(params.base.models_dir)
    files = [Path(params.data.index_path)]
    for run in params.ensemble.runs:
        files += sorted((models / run).glob("fold*/best.pt"))
        files += sorted((models / run).glob("fold*/oof*.parquet"))
    return {f.as_posix(): sha256_file(f) for f in files}


def _write_plots(report: FitReport, out: Path) -> None:
    """Small CSVs that ``dvc plots show`` draws (ROC, reliability, clip curve)."""
    y, p = report.matrix["label"].to_numpy(), report.oof_prob
    out.mkdir(parents=True, exist_ok=True)
    roc = roc_table(y, p)
    if roc is not None:
        write_text(roc.to_csv(index=False), out / "roc.csv")
    write_text(reliability_table(y, p).to_csv(index=False), out / "reliability.csv")
    write_text(report.clip_curve.to_csv(index=False), out / "clip.csv")


def oof_videos(report: FitReport, index: pd.DataFrame) -> pd.DataFrame:
    """The original videos among the fit's out-of-fold rows, with their nested probability,
    label, fold and file path: what a report can re-decode. The compressed copies' rows
    (``name@level``, ``copy`` set) are scores of crops re-encoded in the compress stage, with
    no video file of their own, so they are left out here (their metrics are in cv.json)."""
    matrix = report.matrix
    rows = matrix.assign(prob=report.oof_prob, name=matrix.index)
    if "copy" in rows:
        rows = rows[rows["copy"] == ""]
    paths = index.drop_duplicates("name").set_index("name")["path"]
    rows = rows[rows["name"].isin(paths.index)]
    return rows.assign(path=paths.loc[rows["name"]].to_numpy(), label=rows["label"].astype(int))


def mistake_gallery(params: Params, report: FitReport, out_dir: str | Path, k: int = 2) -> list:
    """Reports of the ``k`` most confident out-of-fold false positives and negatives among the
    original videos, each scored by its own fold's models (which never trained on it), so the
    gallery shows the mistakes the CV figures count."""
    index = pd.read_parquet(params.data.index_path)
    scores = oof_videos(report, index)
    bundles: dict[int, object] = {}

    def bundle_for(row: dict):
        fold = int(row["fold"])
        if fold not in bundles:
            bundles[fold] = bundle_from_params(
                params, purpose="explain", ensemble=report.ensemble, fold=fold
            )
        return bundles[fold]

    return mistake_reports(bundle_for, scores, out_dir, k=k)
