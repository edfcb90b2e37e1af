"""The browser page against ``dfdc predict``: the same exported ensemble scoring the same clips
in headless Chromium (onnxruntime-web, wasm) and in Python (the onnx engine), in one run.

    python benchmarks/web.py [FOLDER ...] [--params params.yaml] [--site DIR] [--json-out F]

FOLDERs default to ../shared/data/dfdc and ../shared/data/ffpp_c23. Uses the workspace's
export (``dvc repro export``, after ``make repro``); the page is built from it into --site (a
temporary folder by default). Prints per clip both probabilities, their difference, whether
they fall on the same side of 0.5 (checked where ``dfdc predict`` is outside 0.4-0.6), the
largest box difference and the seconds each took; then the summary. Python's seconds are the
warm ``Predictor`` (decode, faces, models) with the runtime on every core; the page's are
from choosing the file to its answer (single-threaded wasm unless served cross-origin
isolated, as ``dfdc web`` does). The last line is one JSON object.
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
from dfdc.inference.web import browser_scores, build_web

DEFAULT = ["../shared/data/dfdc", "../shared/data/ffpp_c23"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", default=DEFAULT)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--site", help="build the page here (default: a temporary folder)")
    ap.add_argument("--screenshot", help="save the page after the last clip to this PNG")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    clips = [p for f in args.folders if Path(f).is_dir() for p in sorted(Path(f).rglob("*.mp4"))]
    if not clips:
        print(f"no clips under {args.folders}", file=sys.stderr)
        return 2
    export = Path(params.inference.export_dir)
    site = Path(args.site or tempfile.mkdtemp(prefix="dfdc-web-")) / "site"
    build_web(export, site)
    bundle = load_bundle(params.base.models_dir, "cpu", ensemble=params.ensemble.ensemble_path,
                         engine="onnx", export_dir=export)  # fmt: skip
    print(f"{len(clips)} clips; export {export}; page {site}", flush=True)
    bundle.score(clips[0])  # warm: sessions made, caches filled
    python = {}
    for c in clips:
        t0 = time.perf_counter()
        pred = bundle.score(c)
        python[c.name] = (pred, time.perf_counter() - t0)
    page = browser_scores(site, clips, Path(args.screenshot) if args.screenshot else None)
    rows = []
    print(f"{'clip':<28} {'predict':>8} {'page':>8} {'diff':>7} side  box px  py s  page s")
    for r, c in zip(page["results"], clips, strict=True):
        pred, py_s = python[c.name]
        diff = abs(r["prob"] - pred.prob)
        decided = abs(pred.prob - 0.5) > 0.1
        same = (r["prob"] >= 0.5) == (pred.prob >= 0.5)
        box = (
            float(np.abs(np.subtract(r["boxes"], pred.boxes)).max())
            if r.get("frames") == pred.frames and pred.boxes else float("nan")
        )  # fmt: skip
        rows.append({
            "clip": f"{c.parent.name}/{c.name}", "predict": pred.prob, "page": r["prob"],
            "diff": diff, "decided": decided, "same_side": same, "same_frames":
            r.get("frames") == pred.frames, "box_px": box, "status": r["status"],
            "python_s": py_s, "page_s": r.get("seconds", float("nan")),
        })  # fmt: skip
        side = ("yes" if same else "NO") if decided else "-"
        page_s = rows[-1]["page_s"]
        print(f"{rows[-1]['clip'][-28:]:<28} {pred.prob:8.4f} {r['prob']:8.4f} {diff:7.4f} "
              f"{side:>4} {box:7.2f} {py_s:5.2f} {page_s:7.2f}", flush=True)  # fmt: skip
    diffs = [r["diff"] for r in rows]
    summary = {
        "clips": len(rows),
        "max_diff": max(diffs), "mean_diff": float(np.mean(diffs)),
        "within_0.05": sum(d <= 0.05 for d in diffs),
        "decided": sum(r["decided"] for r in rows),
        "decided_same_side": sum(r["decided"] and r["same_side"] for r in rows),
        "same_frames": sum(r["same_frames"] for r in rows),
        "python_s_per_video": float(np.mean([r["python_s"] for r in rows])),
        "page_s_per_video": float(np.mean([r["page_s"] for r in rows])),
        "console_errors": len(page["errors"]),
    }  # fmt: skip
    print(
        f"agreement: max |diff| {summary['max_diff']:.4f}, mean {summary['mean_diff']:.4f}, "
        f"{summary['within_0.05']}/{len(rows)} within 0.05, "
        f"{summary['decided_same_side']}/{summary['decided']} decided clips on the same side; "
        f"frames and tracks identical on {summary['same_frames']}/{len(rows)}"
    )
    print(f"seconds a video: dfdc predict {summary['python_s_per_video']:.2f}, "
          f"page {summary['page_s_per_video']:.2f}")  # fmt: skip
    print(to_json({"summary": summary, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
