"""Seconds a video for scoring, by engine, on the same clips in the same run: decode + faces
once, then the models four ways (torch with each model's own backbone pass, the reference;
torch with shared passes; the ONNX export on ONNX Runtime and on OpenVINO), each one's largest
probability difference from the reference, the cold start of ``dfdc predict`` (process start to
printed answer) for each, and the 4,000-video projection against the kernel's 9 hours.

    python benchmarks/predict.py [FOLDER ...] [--params params.yaml] [--cold-runs 3]

FOLDERs default to ../shared/data/dfdc and ../shared/data/ffpp_c23. Uses the workspace's
fitted ensemble (run ``make repro`` first) and its export (``dvc repro export``; made in a
temporary folder when absent). One video at a time, as the kernel scores; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from dfdc.core.competition import KERNEL_BUDGET_S, TEST_VIDEOS
from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.core.onnx_sessions import RUNTIMES, SessionError
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.export import export_fitted
from dfdc.inference.onnx_engine import OnnxEngine
from dfdc.inference.predict import load_bundle

DEFAULT = ["../shared/data/dfdc", "../shared/data/ffpp_c23"]


def _time(fn, repeat: int = 1) -> tuple[float, object]:
    """The fastest of ``repeat`` calls (this machine is noisy) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def cold_start(video: Path, params_path: Path, engine: str, runtime: str, runs: int) -> float:
    """Seconds from process start to the printed answer of ``dfdc predict`` (fastest run)."""
    raw = yaml.safe_load(params_path.read_text())
    raw["inference"]["runtime"] = runtime
    path = params_path.with_name(f"params-{runtime}.yaml")
    path.write_text(yaml.safe_dump(raw))
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "dfdc.cli", "predict", str(video), "--params", str(path),
             "--engine", engine],
            capture_output=True, text=True,
        )  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(f"dfdc predict --engine {engine}: {res.stderr.strip()[-500:]}")
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", default=DEFAULT)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2, help="model passes per clip (fastest kept)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    ens = Ensemble.load(params.ensemble.ensemble_path)
    paths = sorted(p for f in args.folders for p in Path(f).rglob("*.mp4"))
    if not paths:
        print(f"{', '.join(args.folders)}: no .mp4 files", file=sys.stderr)
        return 2
    tmp = tempfile.TemporaryDirectory(prefix="dfdc-bench-export-")
    export_dir = Path(params.inference.export_dir)
    if not (export_dir / "export.json").exists():
        export_dir = Path(tmp.name)
        export_fitted(params.base.models_dir, ens, export_dir)
    torch_bundle = load_bundle(params.base.models_dir, "cpu", ensemble=ens)
    predictor = torch_bundle.predictor
    engines = {
        "torch_separate": lambda vf: predictor.engine.crop_probs(vf.crops, vf.track, vf.frame,
                                                                 share=False),
        "torch_shared": lambda vf: predictor.engine.crop_probs(vf.crops, vf.track, vf.frame),
    }  # fmt: skip
    for runtime in RUNTIMES:
        try:
            eng = OnnxEngine(export_dir, [m.name for m in predictor.models], runtime=runtime)
        except SessionError as exc:
            print(f"onnx/{runtime}: {exc}", file=sys.stderr)
            continue
        engines[f"onnx_{runtime}"] = lambda vf, eng=eng: eng.crop_probs(vf.crops, vf.track,
                                                                        vf.frame)  # fmt: skip
    names = [m.name for m in predictor.models]
    print(f"{len(paths)} videos, {len(names)} models ({', '.join(names)}), cpu, "
          f"engines: {', '.join(engines)}")  # fmt: skip
    faces_s: list[float] = []
    model_s: dict[str, list[float]] = {k: [] for k in engines}
    worst = {k: 0.0 for k in engines}
    crops = 0
    # The onnx engine's own face detector (MTCNN's exported networks, no torch), timed beside.
    onnx_detector = Detector(predictor.faces_cfg, "cpu", mtcnn_onnx=str(export_dir))
    onnx_faces_s: list[float] = []
    for p in paths:
        t_faces, vf = _time(lambda p=p: extract_video(p, predictor.faces_cfg, predictor.detector))
        faces_s.append(t_faces)
        t_onnx, _ = _time(lambda p=p: extract_video(p, predictor.faces_cfg, onnx_detector))
        onnx_faces_s.append(t_onnx)
        if vf.status["status"] != "ok":
            print(f"{p.name:<22} faces {t_faces:5.2f} s  {vf.status['status']}")
            continue
        crops += len(vf.crops)
        ref = None
        line = f"{p.name:<22} {len(vf.crops):3d} crops  faces {t_faces:5.2f} / {t_onnx:5.2f} s"
        for name, fn in engines.items():
            t, probs = _time(lambda fn=fn, vf=vf: fn(vf), args.repeat)
            model_s[name].append(t)
            ref = probs if ref is None else ref
            worst[name] = max(worst[name], max(float(np.max(np.abs(probs[k] - ref[k])))
                                               for k in ref))  # fmt: skip
            line += f"  {name} {t:6.3f} s"
        print(line, flush=True)
    video = min(paths, key=lambda p: p.stat().st_size)  # one short clip
    raw = yaml.safe_load(Path(args.params).read_text())
    raw.setdefault("inference", {})["export_dir"] = str(export_dir.resolve())
    cold_params = Path(tmp.name) / "params.yaml"
    cold_params.write_text(yaml.safe_dump(raw))
    cold = {
        "torch": round(cold_start(video, cold_params, "torch", "onnxruntime", args.cold_runs), 2)
    }
    for name in engines:
        if name.startswith("onnx_"):
            runtime = name.removeprefix("onnx_")
            cold[name] = round(cold_start(video, cold_params, "onnx", runtime, args.cold_runs), 2)
    faces, onnx_faces = float(np.mean(faces_s)), float(np.mean(onnx_faces_s))
    per_model = {k: float(np.mean(v)) for k, v in model_s.items() if v}
    base = per_model["torch_separate"]
    result = {
        "videos": len(paths),
        "crops": crops,
        "models": names,
        "decode_faces_s_per_video": {
            "torch_mtcnn": round(faces, 3),
            "onnx_mtcnn": round(onnx_faces, 3),
        },
        "models_s_per_video": {k: round(v, 3) for k, v in per_model.items()},
        "models_speedup_vs_torch_separate": {k: round(base / v, 2) for k, v in per_model.items()},
        "max_abs_prob_diff_vs_torch_separate": {k: float(f"{v:.2e}") for k, v in worst.items()},
        "cold_start_s": {"clip": video.name, **cold},
        "projected_4000_videos_h": {
            k: round(((onnx_faces if k.startswith("onnx") else faces) + v) * TEST_VIDEOS / 3600, 2)
            for k, v in per_model.items()
        },
        "budget_h": KERNEL_BUDGET_S / 3600,
    }
    print(to_json(result))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
