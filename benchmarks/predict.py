"""Seconds per video for ``dfdc predict``, split into decode + faces and the models, and the
projection for the 4,000 test videos against the kernel's 9-hour budget.

    python benchmarks/predict.py [FOLDER] [--models models/baseline] [--params params.yaml]

FOLDER defaults to ../shared/data/dfdc. Uses the workspace's trained models by default (run
``make repro`` first). One video at a time, as a kernel would; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dfdc.core.config import load_params
from dfdc.faces.pipeline import extract_video
from dfdc.inference.aggregate import video_score
from dfdc.inference.predict import load_bundle

BUDGET_S = 9 * 3600
TEST_VIDEOS = 4000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="../shared/data/dfdc")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    root = Path(args.models) if args.models else Path(params.base.models_dir) / params.train.run
    predictor = load_bundle(params.base.models_dir, params.base.device, models=root).predictor
    models = predictor.models
    paths = sorted(Path(args.folder).rglob("*.mp4"))
    if not paths:
        print(f"{args.folder}: no .mp4 files", file=sys.stderr)
        return 2
    print(f"{len(paths)} videos, {len(models)} models ({models[0].name}, ...), {predictor.device}")
    faces_s, model_s = [], []
    for p in paths:
        t0 = time.perf_counter()
        vf = extract_video(p, predictor.faces_cfg, predictor.detector)
        t1 = time.perf_counter()
        if vf.status["status"] == "ok":
            scores = [video_score(p, vf.track) for p in predictor.crop_probs(vf).values()]
            prob = float(np.mean(scores))
        else:
            prob = 0.5
        t2 = time.perf_counter()
        faces_s.append(t1 - t0)
        model_s.append(t2 - t1)
        print(
            f"{p.name:<18} faces {t1 - t0:6.3f} s  models {t2 - t1:6.3f} s  P(fake) {prob:.3f}",
            flush=True,
        )
    per_video = float(np.mean(faces_s) + np.mean(model_s))
    projected = per_video * TEST_VIDEOS
    result = {
        "videos": len(paths),
        "models": len(models),
        "device": predictor.device,
        "decode_faces_s_per_video": round(float(np.mean(faces_s)), 4),
        "models_s_per_video": round(float(np.mean(model_s)), 4),
        "s_per_video": round(per_video, 4),
        "projected_4000_videos_h": round(projected / 3600, 3),
        "budget_h": BUDGET_S / 3600,
        "fits_budget": projected < BUDGET_S,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
