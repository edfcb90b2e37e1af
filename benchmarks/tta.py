"""Does horizontal-flip test-time augmentation pay? A finished workspace's frame folds scored
again on their validation videos and copies, as the crops are and mirrored, then the
ensemble's own fit on each, out of fold, in one run.

    python benchmarks/tta.py [--workspace DIR] [--run baseline] [--out DIR]

``--workspace`` is a folder where ``make real`` (or ``dvc repro``) has run; nothing of it is
overwritten (the scores go under ``--out``, default a temporary folder). For each fold of the
run, its kept model scores the fold's validation videos and each validation copy level twice:
plain (the same scores as the fold's ``oof.parquet``, checked) and with flip TTA (the logits of
each crop and its mirror averaged). The ensemble's fit (weights, temperature, clip; nested by
fold: ``dfdc.inference.fit``) then scores each, on the originals and each copy level, with
the seconds each pass took. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import nested_by_level

from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.core.layout import fold_dir
from dfdc.core.logs import setup_logging
from dfdc.inference.fit import load_oof
from dfdc.training.loop import rescore_fold


class FlipMean(torch.nn.Module):
    """The model's logits for a batch and for its mirror image, averaged."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x) + self.model(torch.flip(x, dims=(3,)))) / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=".")
    ap.add_argument("--run", default=None, help="the frame run (default: train.run)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    out = Path(args.out or tempfile.mkdtemp(prefix="tta-")).resolve()
    os.chdir(args.workspace)
    params = load_params("params.yaml")
    run = params.train if args.run is None else dataclasses.replace(params.train, run=args.run)
    models = Path(params.base.models_dir)
    results, seconds = {}, {}
    for name, wrap in (("plain", None), ("flip", FlipMean)):
        t0 = time.perf_counter()
        for k in params.cv.folds:
            rescore_fold(params, k, run, fold_dir(out / name, run.run, k), wrap)
        seconds[name] = round(time.perf_counter() - t0, 1)
        if name == "plain":  # the same model, crops and code: the fold's own scores
            for k in params.cv.folds:
                mine = pd.read_parquet(fold_dir(out / name, run.run, k) / "oof.parquet")
                kept = pd.read_parquet(fold_dir(models, run.run, k) / "oof.parquet")
                diff = np.abs(mine["video_prob"].to_numpy() - kept["video_prob"].to_numpy())
                print(f"fold {k}: plain against oof.parquet, max difference {diff.max():.2g}")
        cfg = dataclasses.replace(params.ensemble, runs=(run.run,))
        results[name] = nested_by_level(load_oof(out / name, cfg.runs, copies=True), cfg)
        print(
            f"{name}: {seconds[name]:.0f} s; "
            + "; ".join(f"{s} {v['auc']:.3f}/{v['logloss']:.3f}" for s, v in results[name].items()),
            flush=True,
        )
    print(to_json({"workspace": str(Path.cwd()), "seconds": seconds, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
