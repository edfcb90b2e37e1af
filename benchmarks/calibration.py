"""Never confidently wrong? The workspace's ensemble calibrated three ways, scored out of fold
on the originals and each copy level and on labelled sets it never saw, in one run.

    python benchmarks/calibration.py [--workspace DIR] [--sets ../shared/data/dfdc ...]

``--workspace`` is a folder where ``make real`` (or ``dvc repro``) has run; nothing of it is
written. The ways, each fitted on the out-of-fold scores (originals and the validation copies,
as the ensemble stage fits) and scored nested by fold there, then fitted on all of them and
applied to every video of ``--sets`` (scored once with the workspace's models, as ``dfdc
evaluate`` does):

- ``pooled``: the ensemble stage's fit (``ensemble.calibrate_on: pooled``): one temperature and
  clip for the log loss of all the videos;
- ``worst``: the same, for the log loss of the worst group (``calibrate_on: worst``);
- ``spread``: an attempt not in the ensemble: a temperature a video, ``exp(a + b (s - s0))``
  with ``b >= 0``, ``s`` the spread (standard deviation) of the frame logits of the video's
  highest-scoring face, ``s0`` its out-of-fold median: frames that disagree widen the answer.

It prints each way's AUC and log loss on each group and set, the constant answer's (0.693)
beside, the members' disagreement on each set (standard deviation of the fold models' video
logits: not available out of fold, where one model scores each video), and the seconds a
video of the scoring. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.core.logs import setup_logging
from dfdc.core.metrics import binary_metrics, log_loss
from dfdc.dataset.layouts import labelled_entries
from dfdc.inference.ensemble import logit, sigmoid
from dfdc.inference.fit import fit_ensemble, load_oof
from dfdc.inference.predict import bundle_from_params

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def spread(frame_probs, tracks) -> float:
    """Standard deviation of the frame logits of the face track with the highest mean."""
    p, t = np.asarray(frame_probs, float), np.asarray(tracks)
    if p.size == 0:
        return 0.0
    best = max(np.unique(t), key=lambda k: p[t == k].mean())
    return float(logit(p[t == best]).std())


def _widened(q: np.ndarray, z: np.ndarray, s: np.ndarray, s0: float) -> np.ndarray:
    return sigmoid(z / np.exp(q[0] + q[1] * (s - s0)))


def fit_spread(z: np.ndarray, s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(a, b) and s0 of the spread-widened temperature, by log loss."""
    s0 = float(np.median(s))
    q = minimize(
        lambda q: log_loss(y, _widened(q, z, s, s0)), np.zeros(2), method="L-BFGS-B",
        bounds=[(-3, 3), (0, 5)],
    ).x  # fmt: skip
    return q, s0


def score_sets(params, sets: list[Path]) -> tuple[pd.DataFrame, float]:
    """Every labelled video of ``sets`` through the workspace's models: its members' video
    scores, its spread and the members' disagreement; and the seconds a video."""
    bundle = bundle_from_params(params, ensemble=params.ensemble.ensemble_path)
    rows, t0 = [], time.perf_counter()
    for root in sets:
        for e in labelled_entries(root, missing=True):
            pred = bundle.predictor.predict_video(e.path)
            if pred.status != "ok":
                print(f"{e.path}: not scored ({pred.status})")
                continue
            mean_frames = np.mean(list(pred.frame_probs.values()), axis=0)
            members = logit(np.array(list(pred.member_scores.values())))
            rows.append(
                {
                    "set": root.name,
                    "label": int(e.label == "FAKE"),
                    "member_scores": pred.member_scores,
                    "spread": spread(mean_frames, pred.tracks),
                    "disagreement": float(members.std()),
                }
            )
    return pd.DataFrame(rows), (time.perf_counter() - t0) / max(1, len(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=".")
    ap.add_argument("--sets", nargs="*", type=Path, default=[SHARED / "dfdc", SHARED / "ffpp_c23"])
    args = ap.parse_args(argv)
    setup_logging()
    sets = [p.resolve() for p in args.sets]
    os.chdir(args.workspace)
    params = load_params("params.yaml")
    runs = params.ensemble.runs
    oof = load_oof(params.base.models_dir, runs, copies=True)
    scored, seconds = score_sets(params, sets)
    results: dict[str, dict] = {}

    def record(way: str, group: str, y, p) -> None:
        m = binary_metrics(np.asarray(y), np.asarray(p))
        results.setdefault(way, {})[group] = {k: round(m[k], 4) for k in ("auc", "logloss")}

    for way in ("pooled", "worst"):
        cfg = dataclasses.replace(params.ensemble, calibrate_on=way)
        report = fit_ensemble(oof, cfg)
        m = report.matrix
        for level, idx in m.groupby("copy", sort=True).indices.items():
            record(way, f"oof {level or 'originals'}", m["label"].to_numpy()[idx],
                   report.oof_prob[idx])  # fmt: skip
        for name, g in scored.groupby("set"):
            record(way, name, g["label"], [report.ensemble.prob(s) for s in g["member_scores"]])
        results[way]["temperature"] = round(report.ensemble.temperature, 3)

    # The spread attempt, on the first run's video scores (the real recipe has one run).
    first = oof[oof["run"] == runs[0]].drop_duplicates("video").set_index("video")
    m = report.matrix
    z = logit(m[runs[0]].to_numpy())
    s = np.array([spread(first.loc[v, "frame_probs"], first.loc[v, "tracks"]) for v in m.index])
    y, folds = m["label"].to_numpy(), m["fold"].to_numpy()
    nested = np.zeros(len(y))
    for k in np.unique(folds):
        held = folds == k
        q, s0 = fit_spread(z[~held], s[~held], y[~held])
        nested[held] = _widened(q, z[held], s[held], s0)
    for level, idx in m.groupby("copy", sort=True).indices.items():
        record("spread", f"oof {level or 'originals'}", y[idx], nested[idx])
    q, s0 = fit_spread(z, s, y)
    clip = report.ensemble.clip
    for name, g in scored.groupby("set"):
        zs = logit(np.array([np.mean(list(ms.values())) for ms in g["member_scores"]]))
        p = np.clip(_widened(q, zs, g["spread"].to_numpy(), s0), clip, 1 - clip)
        record("spread", name, g["label"], p)
    results["spread"]["a, b, s0"] = [round(float(q[0]), 3), round(float(q[1]), 3), round(s0, 3)]
    disagreement = {n: round(float(g["disagreement"].mean()), 3) for n, g in scored.groupby("set")}
    for way, r in results.items():
        shown = (
            f"{k} {v['auc']:.3f}/{v['logloss']:.3f}" if isinstance(v, dict) else f"{k} {v}"
            for k, v in r.items()
        )
        print(f"{way}: " + "; ".join(shown))
    print(f"members' disagreement (logit sd) by set: {disagreement}; {seconds:.2f} s a video")
    out = {"workspace": str(Path.cwd()), "results": results, "disagreement": disagreement}
    print(to_json({**out, "seconds_a_video": round(seconds, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
