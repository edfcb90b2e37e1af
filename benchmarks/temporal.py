"""Does the temporal model earn its place? The sequence run against the frame run it embeds
with, on the same folds, out of fold, for each way of embedding and each seed, in one run.

    python benchmarks/temporal.py [--workspace DIR] [--embed run oof] [--seeds 42 7]

``--workspace`` is a folder where ``make real`` (or ``dvc repro``) has run: its params.yaml,
faces, folds, compressed copies and the frame run's trained folds (``sequence.sequence.
embed_run``) are used as they are; nothing of it is overwritten. For each ``--embed`` mode
(``run``: each fold's head trains on embeddings from the fold's own frame model, which has
fitted its training videos; ``oof``: every video embedded by the frame model of its own fold,
one that never trained on it) and each seed, the sequence run trains on every fold through the
one training loop, as ``lstm_<embed>_s<seed>`` beside the workspace's runs (a finished fold is
reused), then the ensemble's own fit (``dfdc.inference.fit``) scores, on the originals and on
each validation copy level: the frame run alone, the sequence run alone (video rule of the
ensemble, no calibration) and their blend (weights, temperature and clip fitted nested by
fold), with the blend's fitted weight of the sequence run and its training time. The frame
run is the workspace's (one seed); the sequence seeds vary the head only. The last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.core.logs import setup_logging
from dfdc.core.metrics import binary_metrics
from dfdc.inference.fit import fit_ensemble, load_oof
from dfdc.training.loop import fit


def subsets(matrix, columns: dict[str, np.ndarray]) -> dict[str, dict]:
    """``{name: {set: {auc, logloss}}}``: each score column on the originals and each copy
    level apart (a set is ``c23`` for the originals, else the level)."""
    out: dict[str, dict] = {}
    y = matrix["label"].to_numpy()
    for name, scores in columns.items():
        out[name] = {}
        for level, idx in matrix.groupby("copy", sort=True).indices.items():
            m = binary_metrics(y[idx], scores[idx])
            out[name][level or "c23"] = {k: round(m[k], 4) for k in ("auc", "logloss")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=".")
    ap.add_argument("--embed", nargs="+", default=["run", "oof"], choices=["run", "oof"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 7])
    args = ap.parse_args(argv)
    setup_logging()
    os.chdir(args.workspace)
    params = load_params("params.yaml")
    seq, frame_run = params.sequence, params.sequence.sequence.embed_run
    results = []
    for embed in args.embed:
        for seed in args.seeds:
            name = f"lstm_{embed}_s{seed}"
            run = dataclasses.replace(
                seq, run=name, sequence=dataclasses.replace(seq.sequence, embed=embed)
            )
            p = dataclasses.replace(params, base=dataclasses.replace(params.base, seed=seed))
            t0 = time.perf_counter()
            for k in params.cv.folds:
                fit(p, k, run=run)
            train_s = time.perf_counter() - t0
            cfg = dataclasses.replace(params.ensemble, runs=(frame_run, name))
            report = fit_ensemble(load_oof(params.base.models_dir, cfg.runs, copies=True), cfg)
            matrix = report.matrix
            row = {
                "embed": embed,
                "seed": seed,
                "train_s": round(train_s, 1),
                "weight": round(report.ensemble.weights[1], 4),
                **subsets(
                    matrix,
                    {
                        "frame": matrix[frame_run].to_numpy(),
                        "sequence": matrix[name].to_numpy(),
                        "blend": report.oof_prob,
                    },
                ),
            }
            results.append(row)
            print(
                f"{name}: {row['train_s']:.0f} s, blend weight {row['weight']}; "
                + "; ".join(
                    f"{who} {s} {m['auc']:.3f}/{m['logloss']:.3f}"
                    for who in ("frame", "sequence", "blend")
                    for s, m in row[who].items()
                ),
                flush=True,
            )
    print(to_json({"workspace": str(Path.cwd()), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
