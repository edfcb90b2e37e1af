"""Seconds a video for scoring, by engine, on the same clips in the same run: decode + faces
once, then the models three ways (torch with each model's own backbone pass, today's
reference; torch with shared passes; the ONNX export on ONNX Runtime, and OpenVINO when it is
installed), the cold start of ``dfdc predict`` (process start to printed answer) for each
engine, and the 4,000-video projection against the kernel's 9 hours.

    python benchmarks/predict.py [FOLDER ...] [--params params.yaml] [--cold-runs 3]

FOLDERs default to ../shared/data/dfdc and ../shared/data/ffpp_c23. Uses the workspace's
fitted ensemble (run ``make repro`` first) and its export (``dvc repro export``; made in a
temporary folder when absent). One video at a time, as the kernel scores; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from dfdc.core.competition import KERNEL_BUDGET_S, TEST_VIDEOS
from dfdc.core.config import load_params
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


def _openvino_engine(export_dir: Path):
    """OpenVINO's CPU runtime on the same ONNX files, when the package is installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    onnx_engine = OnnxEngine(export_dir)
    compiled = {
        name: core.compile_model(str(export_dir / name), "CPU") for name in onnx_engine.sessions
    }

    class _Session:
        def __init__(self, model):
            self.model = model
            self.names = [o.get_any_name() for o in model.outputs]

        def get_outputs(self):
            return [type("O", (), {"name": n})() for n in self.names]

        def run(self, outs, feeds):
            res = self.model(list(feeds.values()))
            return [res[self.model.output(n)] for n in outs]

    onnx_engine.sessions = {k: _Session(v) for k, v in compiled.items()}
    return onnx_engine


def cold_start(video: Path, params_path: str, engine: str, runs: int) -> float:
    """Seconds from process start to the printed answer of ``dfdc predict`` (fastest run)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "dfdc.cli", "predict", str(video), "--params", params_path,
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
    onnx_bundle = load_bundle(params.base.models_dir, "cpu", ensemble=ens, engine="onnx",
                              export_dir=export_dir)  # fmt: skip
    predictor = torch_bundle.predictor
    engines = {
        "torch_separate": lambda vf: predictor.engine.crop_probs(vf.crops, vf.track, vf.frame,
                                                                 share=False),
        "torch_shared": lambda vf: predictor.engine.crop_probs(vf.crops, vf.track, vf.frame),
        "onnx": lambda vf: onnx_bundle.predictor.engine.crop_probs(vf.crops, vf.track, vf.frame),
    }  # fmt: skip
    ov = _openvino_engine(export_dir)
    if ov is not None:
        engines["openvino"] = lambda vf: ov.crop_probs(vf.crops, vf.track, vf.frame)
    names = [m.name for m in predictor.models]
    print(f"{len(paths)} videos, {len(names)} models ({', '.join(names)}), cpu, "
          f"engines: {', '.join(engines)}")  # fmt: skip
    faces_s: list[float] = []
    model_s: dict[str, list[float]] = {k: [] for k in engines}
    worst = {k: 0.0 for k in engines}
    crops = 0
    for p in paths:
        t_faces, vf = _time(lambda p=p: extract_video(p, predictor.faces_cfg, predictor.detector))
        faces_s.append(t_faces)
        if vf.status["status"] != "ok":
            print(f"{p.name:<22} faces {t_faces:6.2f} s  {vf.status['status']}")
            continue
        crops += len(vf.crops)
        ref = None
        line = f"{p.name:<22} {len(vf.crops):3d} crops  faces {t_faces:6.2f} s"
        for name, fn in engines.items():
            t, probs = _time(lambda fn=fn, vf=vf: fn(vf), args.repeat)
            model_s[name].append(t)
            ref = probs if ref is None else ref
            worst[name] = max(worst[name], max(float(np.max(np.abs(probs[k] - ref[k])))
                                               for k in ref))  # fmt: skip
            line += f"  {name} {t:6.3f} s"
        print(line, flush=True)
    video = paths[0]
    raw = yaml.safe_load(Path(args.params).read_text())
    raw.setdefault("inference", {})["export_dir"] = str(export_dir.resolve())
    cold_params = Path(tmp.name) / "params.yaml"
    cold_params.write_text(yaml.safe_dump(raw))
    cold = {
        e: round(cold_start(video, str(cold_params), e, args.cold_runs), 2)
        for e in ("torch", "onnx")
    }
    faces = float(np.mean(faces_s))
    per_model = {k: float(np.mean(v)) for k, v in model_s.items() if v}
    base = per_model["torch_separate"]
    result = {
        "videos": len(paths),
        "crops": crops,
        "models": names,
        "decode_faces_s_per_video": round(faces, 3),
        "models_s_per_video": {k: round(v, 3) for k, v in per_model.items()},
        "models_speedup_vs_torch_separate": {k: round(base / v, 2) for k, v in per_model.items()},
        "max_abs_prob_diff_vs_torch_separate": {k: float(f"{v:.2e}") for k, v in worst.items()},
        "cold_start_s": {"clip": video.name, **cold},
        "projected_4000_videos_h": {
            k: round((faces + v) * TEST_VIDEOS / 3600, 2) for k, v in per_model.items()
        },
        "budget_h": KERNEL_BUDGET_S / 3600,
    }
    print(json.dumps(result))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
