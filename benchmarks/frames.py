"""How many frames must a video be scored on? The ensemble's own fit on a finished workspace's
out-of-fold scores, each video's face tracks cut to fewer of their frames (evenly spread, as
the faces stage spreads its samples), and, with ``--time``, seconds a clip for ``dfdc
predict``'s path at each count, in one run.

    python benchmarks/frames.py [--workspace DIR] [--counts 4 8 16 32] [--time CLIP_DIR...]

``--workspace`` is a folder where ``make real`` (or ``dvc repro``) has run; nothing of it is
written. Its folds' ``oof.parquet`` and copy tables hold every crop's probability and frame
(the faces stage's ``faces.frames`` a video). For each count n, every video keeps n of its
frames, evenly spaced, first and last included (``even_indices``; the faces stage asked for n
frames would spread them over the clip the same way, on frames a little apart from these), the
video scores are made again by the ensemble's rule, and the ensemble's fit (temperature and
clip, nested by fold: ``dfdc.inference.fit``) scores them on the originals and each copy level.
Scoring fewer frames is what a faster ``dfdc predict`` or kernel would do; the figures say what
it costs in AUC and log loss. ``--time``: the workspace's fitted ensemble scores the clips under
each folder sampling each count of frames (the bundle loaded and one clip scored
before the clock starts). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
from common import nested_by_level

from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.core.logs import setup_logging
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.fit import load_oof
from dfdc.inference.predict import bundle_from_params


def seconds_a_clip(params, folders: list[str], n: int) -> float:
    """``dfdc predict``'s path sampling ``n`` frames a clip: seconds a clip, warm."""
    fitted = Ensemble.load(params.ensemble.ensemble_path)
    bundle = bundle_from_params(params, ensemble=dataclasses.replace(fitted, frames=n))
    clips = [str(p) for f in folders for p in sorted(Path(f).rglob("*.mp4"))]
    bundle.score(clips[0])
    t0 = time.perf_counter()
    for c in clips:
        bundle.score(c)
    return (time.perf_counter() - t0) / len(clips)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=".")
    ap.add_argument("--counts", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--time", nargs="*", default=[], help="folders of clips to time scoring on")
    args = ap.parse_args(argv)
    setup_logging()
    folders = [str(Path(f).resolve()) for f in args.time]
    os.chdir(args.workspace)
    params = load_params("params.yaml")
    cfg = params.ensemble
    oof = load_oof(params.base.models_dir, cfg.runs, copies=cfg.copies)
    stored = int(max(len(np.unique(f)) for f in oof["frames"]))
    results: dict[str, dict] = {}
    for n in sorted(args.counts):
        if n > stored:
            print(f"{n} frames: the workspace scored {stored} a video; skipped")
            continue
        row: dict = {"oof": nested_by_level(oof, dataclasses.replace(cfg, frames=n))}
        if folders:
            row["s_per_clip"] = round(seconds_a_clip(params, folders, n), 3)
        results[str(n)] = row
        print(f"{n} frames: " + "; ".join(f"{s} {v['auc']:.3f}/{v['logloss']:.3f}"
                                         for s, v in row["oof"].items())
              + (f"; {row['s_per_clip']:.2f} s a clip" if folders else ""), flush=True)  # fmt: skip
    print(to_json({"workspace": str(Path.cwd()), "stored_frames": stored, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
