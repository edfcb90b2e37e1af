"""What a per-video report costs against a plain ``dfdc predict`` of the same video, same run:
each clip scored (``InferenceBundle.score``) and reported (``video_report``: scoring, frames,
timeline, Grad-CAM, sequence frame effects, PNGs, JSON, HTML), alternately, the faster of
``--repeat`` runs of each kept.

    python benchmarks/report.py [FOLDER ...] [--params params.yaml] [--videos 8] [--out DIR]

FOLDERs default to ../shared/data/dfdc and ../shared/data/ffpp_c23 (the first ``--videos``
clips of them); the workspace's fitted ensemble on the torch engine. The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.inference.predict import load_bundle
from dfdc.reports.video_report import video_report

DEFAULT = ["../shared/data/dfdc", "../shared/data/ffpp_c23"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", default=DEFAULT)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", help="keep the reports here (default: a temporary folder)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    bundle = load_bundle(params.base.models_dir, "cpu", ensemble=params.ensemble.ensemble_path)
    paths = []
    for folder in args.folders:
        paths += sorted(Path(folder).rglob("*.mp4"))[: max(1, args.videos // len(args.folders))]
    if not paths:
        print(f"{', '.join(args.folders)}: no .mp4 files", file=sys.stderr)
        return 2
    tmp = tempfile.TemporaryDirectory(prefix="dfdc-bench-report-")
    out = Path(args.out or tmp.name)
    bundle.score(paths[0])  # warm-up, uncounted
    plain, report = [], []
    for p in paths:
        best_plain = best_report = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            bundle.score(p)
            t1 = time.perf_counter()
            video_report(bundle, p, out)
            t2 = time.perf_counter()
            best_plain, best_report = min(best_plain, t1 - t0), min(best_report, t2 - t1)
        plain.append(best_plain)
        report.append(best_report)
        print(f"{p.name:<28} predict {best_plain:6.2f} s  report {best_report:6.2f} s  "
              f"x{best_report / best_plain:.2f}", flush=True)  # fmt: skip
    result = {
        "videos": len(paths),
        "models": [m.name for m in bundle.predictor.models],
        "predict_s_per_video": round(float(np.mean(plain)), 3),
        "report_s_per_video": round(float(np.mean(report)), 3),
        "ratio": round(float(np.mean(report) / np.mean(plain)), 2),
        "worst_ratio": round(float(np.max(np.divide(report, plain))), 2),
    }
    print(to_json(result))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
