"""The face extraction stage: one video -> tracked face crops, and the batch job over the index.

The per-video function is the one inference path too: ``dfdc predict`` and the kernel call
:func:`extract_video` with the same params, so training and test crops cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dfdc.core.config import FacesConfig, to_dict
from dfdc.core.io import write_parquet
from dfdc.core.video import VideoError, even_indices, frame_count
from dfdc.faces.detect import Detection, Detector
from dfdc.faces.frames import SampledFrame, crop_square, decode_sampled
from dfdc.faces.store import (
    VideoFaces,
    encode_crop,
    load_video_faces,
    read_params_hash,
    save_video_faces,
)
from dfdc.faces.track import Track, TrackBox, build_tracks, iou

log = logging.getLogger(__name__)

__all__ = ["FaceJob", "extract_video", "faces_params_hash", "run_faces", "video_faces_path"]

# Keys that change what is stored for a video; workers and paths do not.
_HASH_EXCLUDE = {
    "out_dir", "table_path", "status_path", "workers", "splits", "executor", "ray_address",
}  # fmt: skip


# Bumped when what a video's file holds changes, so old files are redone, not misread.
STORE_VERSION = 2


def faces_params_hash(cfg: FacesConfig) -> str:
    d = {k: v for k, v in to_dict(cfg).items() if k not in _HASH_EXCLUDE}
    d["store_version"] = STORE_VERSION
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class FaceJob:
    video: str
    path: str
    out: str
    original_out: str | None = None  # the original's file, when its boxes may be reused


def _detect_positions(n: int, every: int) -> list[int]:
    pos = list(range(0, n, max(1, every)))
    if n and pos[-1] != n - 1:
        pos.append(n - 1)  # the last frame too, so tracks end on a detection, not a guess
    return pos


def extract_video(
    path: str | Path,
    cfg: FacesConfig,
    detector: Detector | None,
    reuse: VideoFaces | None = None,
    threads: int = 0,
    name: str | None = None,
) -> VideoFaces:
    """Sample, detect, track and crop one video. Never raises for a bad video: the returned
    status says what happened (``ok``, ``no_face``, ``unreadable``)."""
    path = Path(path)
    t0 = time.perf_counter()
    name = name or path.name
    status: dict = {"status": "ok", "reason": None, "frames_tried": 0, "reused_original": False}
    empty = VideoFaces(
        name, status, np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros((0, 4), np.float32),
        np.zeros(0, np.float32), np.zeros(0, bool), np.zeros((0, 5, 2), np.float32),
        np.zeros((0, 4), np.float32), [],
        faces_params_hash(cfg),
    )  # fmt: skip
    try:
        n_frames = frame_count(path)
        if reuse is not None and len(reuse.frame):
            indices = np.unique(reuse.frame)
            indices = indices[indices < n_frames]
        else:
            reuse = None
            indices = even_indices(n_frames, cfg.frames)
        det_pos = [] if reuse is not None else _detect_positions(len(indices), cfg.detect_every)
        frames = decode_sampled(
            path, indices, {int(indices[p]) for p in det_pos}, cfg.detect_max_side, threads
        )
    except VideoError as exc:
        status.update(status="unreadable", reason=str(exc).split(": ", 1)[-1])
        status["seconds"] = time.perf_counter() - t0
        return empty
    status["frames_tried"] = len(frames)
    by_index = {f.index: f for f in frames}
    rows: list[tuple[int, int, np.ndarray, float, bool, np.ndarray]] = []
    if reuse is not None:
        status["reused_original"] = True
        r = reuse
        for i in range(len(r.frame)):
            if int(r.frame[i]) in by_index:
                row = (
                    int(r.frame[i]),
                    int(r.track[i]),
                    r.box[i],
                    float(r.prob[i]),
                    bool(r.detected[i]),
                )
                rows.append((*row, r.landmarks[i]))
    else:
        assert detector is not None
        det_frames = [frames[p] for p in det_pos if p < len(frames)]
        found = detector.detect(
            [f.small for f in det_frames], [(f.width, f.height) for f in det_frames]
        )
        if cfg.detector == "both":  # per video, for the faces notebook's comparison
            status.update(detector.agreement)
        pos_of = {f.index: p for p, f in enumerate(frames)}
        detections: dict[int, list[Detection]] = {
            pos_of[f.index]: d for f, d in zip(det_frames, found, strict=True)
        }
        tracks = build_tracks(
            detections,
            n_positions=len(frames),
            iou_threshold=cfg.track_iou,
            max_gap=cfg.max_gap,
            min_fraction=cfg.min_track_fraction,
            max_tracks=cfg.max_tracks,
            carry=max(0, cfg.detect_every - 1),
        )
        _refine_between(tracks, frames, detector, cfg)
        for tid, track in enumerate(tracks):
            for pos, tb in sorted(track.boxes.items()):
                rows.append((frames[pos].index, tid, tb.box, tb.prob, tb.detected, tb.landmarks))
    if not rows:
        status.update(status="no_face", reason="no face track found")
        status["seconds"] = time.perf_counter() - t0
        return empty
    rows.sort(key=lambda r: (r[1], r[0]))
    crops, squares = [], []
    for frame_idx, _, box, _, _, _ in rows:
        f = by_index[frame_idx]
        square = crop_square(box, cfg.margin, f.width, f.height)
        squares.append(square)
        crops.append(encode_crop(f.crop(square, cfg.crop_size), cfg.crop_format, cfg.jpeg_quality))
    status["frames_with_face"] = len({r[0] for r in rows})
    status["tracks"] = len({r[1] for r in rows})
    status["seconds"] = time.perf_counter() - t0
    return VideoFaces(
        video=name,
        status=status,
        frame=np.array([r[0] for r in rows], np.int32),
        track=np.array([r[1] for r in rows], np.int16),
        box=np.stack([np.asarray(r[2], np.float32) for r in rows]),
        prob=np.array([r[3] for r in rows], np.float32),
        detected=np.array([r[4] for r in rows], bool),
        landmarks=np.stack([np.asarray(r[5], np.float32) for r in rows]),
        crop_box=np.stack(squares).astype(np.float32),
        crops=crops,
        params_hash=faces_params_hash(cfg),
    )


def _rerec(box: np.ndarray) -> np.ndarray:
    """The square with the same centre and the longer side (MTCNN's own squaring)."""
    side = max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def _refine_between(
    tracks: list[Track], frames: list[SampledFrame], detector: Detector, cfg: FacesConfig
) -> None:
    """Turn interpolated or carried boxes into detections with O-Net, batched per video.

    A box O-Net rejects keeps its interpolated position (marked not detected), so a brief
    occlusion does not break the track.
    """
    todo = [(t, pos) for t in tracks for pos, tb in t.boxes.items() if not tb.detected]
    if not todo or cfg.refine_steps <= 0:
        return
    boxes = np.stack([t.boxes[pos].box for t, pos in todo]).astype(np.float32)
    for _ in range(cfg.refine_steps):
        squares = []
        for (_, pos), box in zip(todo, boxes, strict=True):
            f = frames[pos]
            squares.append(crop_square(_rerec(box), 0.0, f.width, f.height))
        squares = np.stack(squares)
        crops = np.stack(
            [frames[pos].crop(sq, 48) for (_, pos), sq in zip(todo, squares, strict=True)]
        )
        probs, boxes, landmarks = detector.refine(crops, squares)
    for (t, pos), p, box, lm in zip(todo, probs, boxes, landmarks, strict=True):
        # O-Net only sees its crop, so it cannot jump to another face; the overlap check only
        # guards against a box that drifted off into the background.
        if p >= cfg.min_prob and iou(box, t.boxes[pos].box) > 0.1:
            t.boxes[pos] = TrackBox(box, lm, float(p), True)


def video_faces_path(out_dir: str | Path, part: str, video: str) -> Path:
    return Path(out_dir) / part / (Path(video).stem + ".npz")


# --- the batch job -------------------------------------------------------------------------

_worker: dict = {}


def _init_worker(cfg: FacesConfig, device: str, torch_threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(1)
    _worker["cfg"] = cfg
    _worker["detector"] = Detector(cfg, device)
    _worker["threads"] = torch_threads


def _run_job(job: FaceJob) -> dict:
    cfg: FacesConfig = _worker["cfg"]
    reuse = None
    if job.original_out and Path(job.original_out).exists():
        original = load_video_faces(job.original_out, crops=False)
        if original.status.get("status") == "ok":
            reuse = original
    try:
        vf = extract_video(
            job.path,
            cfg,
            _worker["detector"],
            reuse=reuse,
            threads=_worker["threads"],
            name=job.video,
        )
    except Exception as exc:  # one broken video must never end a 120k-video run
        log.exception("%s: extraction failed", job.path)
        status = {
            "status": "error",
            "reason": f"{type(exc).__name__}: {exc}"[:300],
            "frames_tried": 0,
        }
        return {"video": job.video, **status}
    save_video_faces(vf, job.out)
    return {"video": job.video, **vf.status}


def plan_jobs(index: pd.DataFrame, cfg: FacesConfig) -> tuple[list[FaceJob], list[FaceJob]]:
    """Jobs for the configured splits: first the videos to detect on, then the fakes whose
    original is in the set (they reuse its boxes once it is done)."""
    rows = index[index["split"].isin(cfg.splits)]
    out_of = {r.name: str(video_faces_path(cfg.out_dir, r.part, r.name)) for r in rows.itertuples()}
    first, second = [], []
    for r in rows.itertuples():
        orig = r.original if isinstance(r.original, str) else None
        if cfg.reuse_original_boxes and orig in out_of:
            second.append(FaceJob(r.name, r.path, out_of[r.name], out_of[orig]))
        else:
            first.append(FaceJob(r.name, r.path, out_of[r.name]))
    return first, second


def _prune(out_dir: str, keep: set[str]) -> None:
    """Remove files of videos no longer in the index (the output folder persists between
    DVC runs, so a changed source would otherwise leave them in the tracked output)."""
    keep_resolved = {str(Path(k).resolve()) for k in keep}
    stale = [p for p in Path(out_dir).rglob("*.npz") if str(p.resolve()) not in keep_resolved]
    for p in stale:
        p.unlink()
    if stale:
        log.info("faces: removed %d files of videos no longer in the index", len(stale))


class FaceActor:
    """A Ray actor: one worker's detector, the pool worker's job function."""

    def __init__(self, cfg: FacesConfig, device: str, torch_threads: int) -> None:
        _init_worker(cfg, device, torch_threads)

    def ready(self) -> bool:
        return "detector" in _worker

    def run(self, job: FaceJob) -> dict:
        return _run_job(job)


def _ready(_: int) -> bool:
    time.sleep(0.2)  # long enough that every worker takes one, so all of them start
    return "detector" in _worker


def run_faces(
    index: pd.DataFrame, cfg: FacesConfig, device: str = "cpu", timing: dict | None = None
) -> pd.DataFrame:
    """Extract every video not already done with the same params; write the table and status.

    Resumable: a finished video is a complete ``.npz`` with the current params hash, so a
    rerun (after an interruption, or with more videos) does only what is missing.
    """
    first, second = plan_jobs(index, cfg)
    _prune(cfg.out_dir, {j.out for j in first + second})
    want = faces_params_hash(cfg)
    todo = [[j for j in jobs if read_params_hash(j.out) != want] for jobs in (first, second)]
    done_before = len(first) + len(second) - sum(len(t) for t in todo)
    if done_before:
        log.info("faces: %d videos already extracted with these params; skipping them", done_before)
    workers = max(1, cfg.workers)
    torch_threads = max(1, (os.cpu_count() or 1) // workers)
    results: list[dict] = []
    total = sum(len(t) for t in todo)
    timing = {} if timing is None else timing
    t0 = time.perf_counter()
    with tqdm(total=total, desc="faces", unit="video") as bar:
        if cfg.executor == "ray" and total:
            from dfdc.core.executor import RayActors, ray_session

            with ray_session(cfg.ray_address, num_cpus=workers):
                gpus = 1 / workers if device == "cuda" else 0  # actors share a node's GPU
                actors = RayActors(FaceActor, (cfg, device, 1), workers, num_gpus=gpus)
                timing["start_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                # Fakes after originals (they reuse the originals' boxes), on the same actors.
                results += actors.map("run", todo, on_result=lambda _: bar.update())
        elif workers == 1 or total <= 1:
            _init_worker(cfg, device, torch_threads)
            timing["start_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            for jobs in todo:
                for job in jobs:
                    results.append(_run_job(job))
                    bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(cfg, device, torch_threads)) as pool:  # fmt: skip
                list(pool.map(_ready, range(workers)))
                timing["start_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                for jobs in todo:
                    for res in pool.map(_run_job, jobs, chunksize=1):
                        results.append(res)
                        bar.update()
    timing["extract_s"] = time.perf_counter() - t1
    return collect(index, cfg, fresh=results)


def collect(index: pd.DataFrame, cfg: FacesConfig, fresh: Iterable[dict] = ()) -> pd.DataFrame:
    """Gather every video's file into ``faces.parquet`` and ``faces_status.parquet``."""
    fresh_by_video = {r["video"]: r for r in fresh}
    rows = index[index["split"].isin(cfg.splits)]
    tables, statuses = [], []
    for r in rows.itertuples():
        path = video_faces_path(cfg.out_dir, r.part, r.name)
        if r.name in fresh_by_video and fresh_by_video[r.name].get("status") == "error":
            statuses.append({**fresh_by_video[r.name], "part": r.part})
            continue
        if not path.exists():
            statuses.append(
                {"video": r.name, "part": r.part, "status": "missing", "reason": "not extracted"}
            )
            continue
        vf = load_video_faces(path, crops=False)
        t = vf.rows()
        t.insert(1, "part", r.part)
        t["file"] = str(path)
        tables.append(t)
        statuses.append({"video": r.name, "part": r.part, **vf.status})
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    status = pd.DataFrame(statuses)
    write_parquet(table, cfg.table_path)
    write_parquet(status, cfg.status_path)
    counts = status["status"].value_counts().to_dict() if len(status) else {}
    bad = {k: v for k, v in counts.items() if k != "ok"}
    if bad:
        log.warning("faces: %d of %d videos without crops: %s", sum(bad.values()), len(status), bad)
    log.info("faces: %d crops from %d videos -> %s", len(table), len(status), cfg.table_path)
    return table
