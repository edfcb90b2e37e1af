"""Face extraction speed and recall against the decode floor and a naive MTCNN, in one run.

    python benchmarks/faces.py [FOLDER...] [--frames 32] [--params params.yaml] [--limit N]
                               [--detectors mtcnn,blazeface,...] [--ray] [--project 1 8 32 128]

FOLDER defaults to ../shared/data/dfdc (every .mp4 below each folder given). Three
measurements:

- decode floors: every frame decoded and thrown away (PyAV, FFmpeg frame threads), one video at
  a time, and with one process per core; the floor is the faster of the two. Then the same for
  only what the stage decodes since it skips pictures nothing wanted refers to (the N sampled
  frames and every reference picture before the last: ``decode_indexed``), the new floor.
- ``--before``: the stage in this process with one worker, twice on the same clips: decoding
  every frame (as it did before the skipping) and as it does now; the same crop table (frames,
  boxes, landmarks) checked. The pixels themselves are checked by tests/core/test_video.py.
- naive: facenet-pytorch MTCNN with its default settings at full resolution on the same N
  evenly spaced frames, one video at a time (all cores to torch).
- stage: ``run_faces`` with the params file's ``faces`` section (its worker pool included), on
  an index of these videos, fresh output directory, boxes never reused.

Recall: the naive detections (probability >= 0.9) are linked across frames by IoU; the main
face of a video is the largest (mean area x probability) of the tracks seen in at least half
the frames, so neither a one-frame false positive nor a photo on the wall is the reference.
In each frame where that track has a box, the stage finds
the main face if one of its crops' boxes overlaps it with IoU >= 0.5. Times exclude starting
the worker pools (a few seconds, once per run), for the decode floor and the stage alike.
With ``--detectors mtcnn,blazeface,blazeface+w2,both`` the stage runs once per detector on the
same clips (a detection audit): seconds a video against the decode floor, the main face found,
false positives (crops that overlap no face the full-resolution reference found in that frame:
per crop, and tracks made mostly of them) and the boxes' IoU with the reference's main face.
With ``--ray`` the stage runs again on a local Ray instance (``faces.executor: ray``, as many
actors as ``faces.workers``) on the same clips: its time a video against the pool's, and the
start-up it costs once. Then a projection (labelled as one) of the full DFDC, 120,000 videos,
on N machines like this one from the measured time a video.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import av
import numpy as np
import pandas as pd
from common import decoding_everything

from dfdc.core.config import load_params
from dfdc.core.io import to_json
from dfdc.core.video import decode_indexed, even_indices, frame_count, iter_frames
from dfdc.faces.batch import run_faces
from dfdc.faces.boxes import iou
from dfdc.faces.detect import Detection
from dfdc.faces.track import build_tracks

FULL_DFDC = 120_000  # videos in the full DFDC training set


def decode_all(path: str) -> int:
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def decode_needed(path: str, n: int = 32) -> int:
    """Decode what the stage needs for ``n`` sampled frames, and nothing more."""
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        wanted = set(even_indices(frame_count(path), n).tolist())
        return sum(1 for _ in decode_indexed(Path(path), c, s, wanted))


def _warm(_: int) -> None:
    time.sleep(0.5)


def decode_floor(paths: list[str], fn=decode_all) -> tuple[float, float, list[float]]:
    per_video = []
    t0 = time.perf_counter()
    for p in paths:
        t = time.perf_counter()
        fn(p)
        per_video.append(time.perf_counter() - t)
    serial = (time.perf_counter() - t0) / len(paths)
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_warm, range(workers)))  # start the workers before timing
        t0 = time.perf_counter()
        list(pool.map(fn, paths))
        pooled = (time.perf_counter() - t0) / len(paths)
    return serial, pooled, per_video


def before_after(paths: list[str], params_path: str, n: int) -> dict:
    """The stage with one worker in this process, decoding every frame (the timestamps hidden,
    so ``decode_indexed`` takes its decode-everything path, as the stage did before) and then as
    it does now, on the same clips; whether the crop tables (frames, boxes, landmarks) match."""
    with decoding_everything():
        before, t_before, _, _ = stage(paths, params_path, n, workers=1)
    after, t_after, _, _ = stage(paths, params_path, n, workers=1)
    keys = [c for c in t_after.columns if c != "file"]  # the files are temporary
    same = t_before[keys].reset_index(drop=True).equals(t_after[keys].reset_index(drop=True))
    return {"before_s_per_video": round(before, 4), "after_s_per_video": round(after, 4),
            "speedup": round(before / after, 3), "same_crop_table": bool(same)}  # fmt: skip


def naive(
    paths: list[str], n: int
) -> tuple[list[float], dict[tuple[str, int], np.ndarray], dict[tuple[str, int], list]]:
    """(seconds a video, the main face's box per (video, frame), every face's boxes per
    (video, frame)) of MTCNN at full resolution with its default settings, p >= 0.9."""
    import torch
    from facenet_pytorch import MTCNN

    torch.set_num_threads(os.cpu_count() or 1)
    mtcnn = MTCNN(keep_all=True, device="cpu")
    seconds, main_faces, all_faces = [], {}, {}
    for p in paths:
        t = time.perf_counter()
        frames = list(iter_frames(p, even_indices(frame_count(p), n)))
        found: dict[int, list[Detection]] = {}
        for pos, f in enumerate(frames):
            boxes, probs, points = mtcnn.detect(f.image, landmarks=True)
            found[pos] = []
            if boxes is not None:
                for b, pr, lm in zip(boxes, probs, points, strict=True):
                    if float(pr) >= 0.9:
                        found[pos].append(
                            Detection(
                                np.asarray(b, np.float32), float(pr), np.asarray(lm, np.float32)
                            )
                        )
        seconds.append(time.perf_counter() - t)
        for pos, dets in found.items():
            all_faces[(Path(p).name, frames[pos].index)] = [d.box for d in dets]
        tracks = build_tracks(
            found,
            len(frames),
            iou_threshold=0.3,
            max_gap=len(frames),
            min_fraction=0,
            max_tracks=99,
        )
        # The main face: the largest face among those seen in at least half the frames.
        steady = [tr for tr in tracks if len(tr.hits) >= 0.5 * len(frames)] or tracks
        if steady:
            main = max(steady, key=lambda tr: tr.score())
            for pos, d in main.hits.items():
                main_faces[(Path(p).name, frames[pos].index)] = d.box
    return seconds, main_faces, all_faces


def stage(
    paths: list[str], params_path: str, n: int, executor: str = "pool", **faces
) -> tuple[float, pd.DataFrame, pd.DataFrame, float]:
    """(extraction s/video, table, status, start-up s) of ``run_faces`` on ``executor``
    (``faces``: other keys of the faces section, e.g. detector)."""
    params = load_params(params_path)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(
            params.faces,
            **faces,
            executor=executor,
            frames=n,
            out_dir=f"{tmp}/faces",
            table_path=f"{tmp}/faces.parquet",
            status_path=f"{tmp}/status.parquet",
            reuse_original_boxes=False,
        )
        index = pd.DataFrame(
            {
                "name": [Path(p).name for p in paths],
                "path": paths,
                "part": "bench",
                "split": "train",
                "original": None,
                "label": None,
            }
        )
        timing: dict = {}
        table = run_faces(index, cfg, device="cpu", timing=timing)
        status = pd.read_parquet(cfg.status_path)
    return timing["extract_s"] / len(paths), table, status, timing["start_s"]


def recall(main_faces: dict, table: pd.DataFrame) -> float:
    if not main_faces:
        return float("nan")
    boxes = {}
    for r in table.itertuples():
        boxes.setdefault((r.video, int(r.frame)), []).append(np.array([r.x1, r.y1, r.x2, r.y2]))
    found = sum(
        1 for key, ref in main_faces.items() if any(iou(ref, b) >= 0.5 for b in boxes.get(key, []))
    )
    return found / len(main_faces)


def audit(table: pd.DataFrame, main_faces: dict, all_faces: dict) -> dict:
    """A detector's crops against the full-resolution reference: the main face found (IoU
    >= 0.5), false positives (crops overlapping no face the reference found in that frame,
    IoU < 0.3 with each; per crop, and per track where most of its crops are such), and the
    main face's mean IoU where found."""
    false, ious = [], []
    for r in table.itertuples():
        box = np.array([r.x1, r.y1, r.x2, r.y2])
        refs = all_faces.get((r.video, int(r.frame)))
        if refs is None:  # a frame the reference did not look at
            continue
        false.append(all(iou(box, ref) < 0.3 for ref in refs))
        main = main_faces.get((r.video, int(r.frame)))
        if main is not None and iou(box, main) >= 0.5:
            ious.append(iou(box, main))
    looked = [(v, int(f)) in all_faces for v, f in zip(table["video"], table["frame"], strict=True)]
    checked = table[looked]
    per_track = checked.assign(false=false).groupby(["video", "track"])["false"].mean()
    return {
        "main_face_found": round(recall(main_faces, table), 4),
        "false_positive_crops": round(float(np.mean(false)), 4) if false else 0.0,
        "false_positive_tracks": int((per_track > 0.5).sum()),
        "tracks": int(len(per_track)),
        "main_face_iou": round(float(np.mean(ious)), 3) if ious else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", default=["../shared/data/dfdc"])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--ray", action="store_true", help="also run the stage on a local Ray")
    ap.add_argument("--before", action="store_true",
                    help="also the stage decoding every frame against now, one worker")  # fmt: skip
    ap.add_argument(
        "--detectors", default="",
        help="comma list of faces.detector values to audit (e.g. mtcnn,blazeface,both); "
        "'blazeface+w2' adds 2x2 sliding windows",
    )  # fmt: skip
    ap.add_argument(
        "--project", type=int, nargs="*", default=[1, 8, 32, 128],
        help="machines of this kind to project the full DFDC (120,000 videos) onto",
    )  # fmt: skip
    args = ap.parse_args(argv)
    paths = []
    for folder in args.folders:
        found = sorted(str(p) for p in Path(folder).rglob("*.mp4"))
        paths += found[: args.limit] if args.limit else found
    if not paths:
        print(f"{', '.join(args.folders)}: no .mp4 files", file=sys.stderr)
        return 2
    names = [Path(p).name for p in paths]
    if len(set(names)) < len(names):
        print("two clips share a file name; the audit keys frames by name", file=sys.stderr)
        return 2
    print(
        f"{len(paths)} videos from {', '.join(args.folders)}, N={args.frames}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )

    serial, pooled, per_video_decode = decode_floor(paths)
    floor = min(serial, pooled)
    print(
        f"decode floor: {serial:.3f} s/video one at a time, {pooled:.3f} s/video pooled", flush=True
    )
    n_serial, n_pooled, _ = decode_floor(paths, partial(decode_needed, n=args.frames))
    needed = min(n_serial, n_pooled)
    print(f"needed-only floor: {n_serial:.3f} s/video one at a time, {n_pooled:.3f} s/video "
          f"pooled ({floor / needed:.2f}x below decoding every frame)", flush=True)  # fmt: skip
    stage_s, table, status, _ = stage(paths, args.params, args.frames)
    print(f"stage: {stage_s:.3f} s/video ({stage_s / floor:.2f}x the every-frame floor, "
          f"{stage_s / needed:.2f}x the needed-only floor)", flush=True)  # fmt: skip
    compared = before_after(paths, args.params, args.frames) if args.before else None
    if compared:
        print("one worker, decoding every frame then only what is needed: " +
              ", ".join(f"{k} {v}" for k, v in compared.items()), flush=True)  # fmt: skip
    ray_s = ray_start = None
    if args.ray:
        ray_s, ray_table, _, ray_start = stage(paths, args.params, args.frames, "ray")
        same = len(ray_table) == len(table)
        print(
            f"stage on Ray (local, {load_params(args.params).faces.workers} actors): "
            f"{ray_s:.3f} s/video ({ray_s / stage_s:.2f}x the pool's), start-up "
            f"{ray_start:.1f} s once; same crops as the pool: {same}",
            flush=True,
        )
    naive_s, main_faces, all_faces = naive(paths, args.frames)
    print(f"naive: {np.mean(naive_s):.3f} s/video", flush=True)
    detectors, tables = {}, {}
    for name in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        det, _, win = name.partition("+w")
        s_video, t, _, _ = stage(paths, args.params, args.frames, detector=det,
                                 windows=int(win or 0))  # fmt: skip
        row = {"s_per_video": round(s_video, 4), "ratio_to_decode_floor": round(s_video / floor, 3),
               **audit(t, main_faces, all_faces)}  # fmt: skip
        detectors[name], tables[name] = row, t
        print(f"detector {name}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)

    status = status.set_index("video")
    print(
        f"{'video':<26}{'decode_s':>9}{'naive_s':>9}{'stage_s*':>9}{'tracks':>7}{'recall':>8}"
        + "".join(f"{d[:12]:>13}" for d in tables)
    )
    for p, d, nv in zip(paths, per_video_decode, naive_s, strict=True):
        name = Path(p).name
        mine = {k: v for k, v in main_faces.items() if k[0] == name}
        r = recall(mine, table[table["video"] == name]) if len(table) else float("nan")
        st = status.loc[name]
        per_detector = "".join(
            f"{recall(mine, t[t['video'] == name]) if len(t) else float('nan'):13.3f}"
            for t in tables.values()
        )
        print(
            f"{name:<26}{d:9.3f}{nv:9.3f}{st.get('seconds', float('nan')):9.3f}"
            f"{st.get('tracks', 0):7.0f}{r:8.3f}{per_detector}"
        )
    print("(* stage_s: one worker's time on that video, decode included, while the pool runs;")
    print("   recall and the detectors' columns: the main face found, vs naive)")
    result = {
        "videos": len(paths),
        "frames": args.frames,
        "s_per_video": round(stage_s, 4),
        "decode_floor_s_per_video": round(floor, 4),
        "needed_floor_s_per_video": round(needed, 4),
        "ratio_to_needed_floor": round(stage_s / needed, 3),
        "before_after_one_worker": compared,
        "naive_s_per_video": round(float(np.mean(naive_s)), 4),
        "speedup_vs_naive": round(float(np.mean(naive_s)) / stage_s, 2),
        "ratio_to_decode_floor": round(stage_s / floor, 3),
        "faces_found_ratio_vs_naive": round(recall(main_faces, table), 4),
        "naive_frames_with_face": len(main_faces),
    }
    # A projection, not a measurement: the measured time a video on one machine of this kind,
    # divided over N such machines, assuming the Ray overhead measured here stays and the
    # shared filesystem keeps up (neither checked past one machine).
    per_machine = ray_s if ray_s is not None else stage_s
    projection = {
        str(m): round(FULL_DFDC * per_machine / m / 3600, 1) for m in (args.project or [])
    }
    for m, hours in projection.items():
        print(f"projection: the full DFDC ({FULL_DFDC:,} videos) on {m} machine(s) like this "
              f"one: {hours} h")  # fmt: skip
    result.update(
        ray_s_per_video=None if ray_s is None else round(ray_s, 4),
        ray_over_pool=None if ray_s is None else round(ray_s / stage_s, 3),
        ray_start_s=None if ray_start is None else round(ray_start, 1),
        projection_hours_by_machines=projection,
        detectors=detectors,
    )
    print(to_json(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
