"""The faces stage's batch job: every indexed video of the configured splits through
:func:`~dfdc.faces.pipeline.extract_video`, on a local process pool or Ray actors, resumable,
gathered into the crop table and the status table."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dfdc.core.config import FacesConfig
from dfdc.core.errors import UserError
from dfdc.core.executor import RayActors, process_pool, ray_session
from dfdc.core.fingerprint import code_digest
from dfdc.core.io import remove_partial, write_parquet
from dfdc.core.logs import some
from dfdc.core.progress import progress
from dfdc.core.provenance import content_digest
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video, faces_params_hash, video_faces_path
from dfdc.faces.store import load_video_faces, read_params_hash, save_video_faces

log = logging.getLogger(__name__)

__all__ = ["FaceActor", "FaceJob", "FacesError", "collect", "plan_jobs", "run_faces"]


class FacesError(UserError):
    """The faces stage cannot do its job (every input unreadable); nothing was overwritten."""


@dataclass(frozen=True)
class FaceJob:
    video: str
    path: str
    out: str
    original_out: str | None = None  # the original's file, when its boxes may be reused
    original_path: str | None = None  # the original's video


def job_key(job: FaceJob, cfg: FacesConfig) -> str:
    """What a finished ``.npz`` must carry to be reused: the face settings, the fingerprint of
    the code that extracts (:mod:`dfdc.faces.pipeline` and what it runs; not the drawing code
    of the faces notebook, not comments), and the content of the video (and of the original
    whose boxes it reuses). A regenerated or replaced video under the same name, or a change to
    the extraction code, extracts it again; the stage rerun for a plot does not."""
    code = code_digest("dfdc.faces.pipeline")[:16]
    parts = [faces_params_hash(cfg), code, content_digest(job.path)]
    if job.original_path:
        parts.append(content_digest(job.original_path))
    return ":".join(parts)


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
        # Only boxes of the original as it is now (an unreadable original's file is written
        # after this job runs, so an older file of it may still be there).
        current = job_key(FaceJob(job.video, str(job.original_path), job.original_out), cfg)
        if original.status.get("status") == "ok" and original.params_hash == current:
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
    vf.params_hash = job_key(job, cfg)
    # The time goes to the status table only: in the file it would make every rebuild of the
    # same crops other bytes, and DVC would rerun every stage after the faces for nothing.
    seconds = vf.status.pop("seconds", None)
    if vf.status.get("status") == "unreadable":
        # Written by the caller once it knows not every video failed (a missing data folder
        # or a wrong setting must not replace good face files with empty ones).
        return {"video": job.video, **vf.status, "seconds": seconds, "out": job.out, "pending": vf}
    save_video_faces(vf, job.out)
    return {"video": job.video, **vf.status, "seconds": seconds}


def plan_jobs(index: pd.DataFrame, cfg: FacesConfig) -> tuple[list[FaceJob], list[FaceJob]]:
    """Jobs for the configured splits: first the videos to detect on, then the fakes whose
    original is in the set (they reuse its boxes once it is done)."""
    rows = index[index["split"].isin(cfg.splits)]
    out_of = {r.name: str(video_faces_path(cfg.out_dir, r.part, r.name)) for r in rows.itertuples()}
    first, second = [], []
    for r in rows.itertuples():
        orig = r.original if isinstance(r.original, str) else None
        if cfg.reuse_original_boxes and orig in out_of:
            orig_path = rows.loc[rows["name"] == orig, "path"].iloc[0]
            second.append(FaceJob(r.name, r.path, out_of[r.name], out_of[orig], orig_path))
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


@contextmanager
def _in_process_worker(cfg: FacesConfig, device: str) -> Iterator[None]:
    """The worker's detector in the calling process, on every core, and that process's torch
    and OpenCV thread counts as they were afterwards: the caller may train next (a benchmark
    that extracts, then fits), and a pool worker's one-thread setting left behind once made
    it train on one of two cores."""
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        _init_worker(cfg, device, os.cpu_count() or 1)
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
        _worker.clear()


def _ready(_: int) -> bool:
    time.sleep(0.2)  # long enough that every worker takes one, so all of them start
    return "detector" in _worker


def run_faces(
    index: pd.DataFrame, cfg: FacesConfig, device: str = "cpu", timing: dict | None = None
) -> pd.DataFrame:
    """Extract every video not already done with the same params; write the table and status.

    Resumable: a finished video is a complete ``.npz`` with the current :func:`job_key` (the
    params hash and the video's content digest), so a rerun (after an interruption, or with
    more videos) does only what is missing or changed.

    A run in which every video fails (the data folder gone, a setting no video survives) is a
    :class:`FacesError` naming the first few, and leaves every existing face file as it was:
    an unreadable video's file is written only once some video of the run was readable.
    """
    first, second = plan_jobs(index, cfg)
    if partial := remove_partial(cfg.out_dir):
        log.info("faces: removed %d partly written files of an interrupted run", partial)
    _prune(cfg.out_dir, {j.out for j in first + second})
    todo = [
        [j for j in jobs if read_params_hash(j.out) != job_key(j, cfg)] for jobs in (first, second)
    ]
    done_before = len(first) + len(second) - sum(len(t) for t in todo)
    if done_before:
        log.info("faces: %d videos already extracted with these params; skipping them", done_before)
    workers = max(1, cfg.workers)
    torch_threads = max(1, (os.cpu_count() or 1) // workers)
    results: list[dict] = []
    total = sum(len(t) for t in todo)
    timing = {} if timing is None else timing
    t0 = time.perf_counter()
    with progress(total=total, desc="faces", unit="video") as bar:
        if cfg.executor == "ray" and total:
            with ray_session(cfg.ray_address, num_cpus=workers):
                gpus = 1 / workers if device == "cuda" else 0  # actors share a node's GPU
                actors = RayActors(FaceActor, (cfg, device, 1), workers, num_gpus=gpus)
                timing["start_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                # Fakes after originals (they reuse the originals' boxes), on the same actors.
                results += actors.map("run", todo, on_result=lambda _: bar.update())
        elif workers == 1 or total <= 1:
            timing["start_s"], t1 = 0.0, time.perf_counter()
            if total:
                with _in_process_worker(cfg, device):
                    timing["start_s"] = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    for jobs in todo:
                        for job in jobs:
                            results.append(_run_job(job))
                            bar.update()
        else:
            with process_pool(workers, _init_worker, (cfg, device, torch_threads)) as pool:
                list(pool.map(_ready, range(workers)))
                timing["start_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                for jobs in todo:
                    for res in pool.map(_run_job, jobs, chunksize=1):
                        results.append(res)
                        bar.update()
    timing["extract_s"] = time.perf_counter() - t1
    _write_unreadable(results, len(first) + len(second))
    return collect(index, cfg, fresh=results)


def _write_unreadable(results: list[dict], n_videos: int) -> None:
    """Write the unreadable videos' files :func:`_run_job` held back, unless every video of
    the run failed: then stop with one line, every existing face file untouched."""
    failed = [r for r in results if r.get("status") in ("unreadable", "error")]
    if n_videos and len(failed) == n_videos:
        named = some([f"{r['video']} ({r.get('reason')})" for r in failed])
        raise FacesError(
            f"faces: every one of the {n_videos} videos failed: {named}; nothing was written "
            "and the existing face files are kept (is data.raw_dir there? rerun dvc repro "
            "data; or check the faces settings)"
        )
    for r in results:
        pending = r.pop("pending", None)
        if pending is not None:
            save_video_faces(pending, r.pop("out"))


def _earlier_seconds(status_path: str | Path) -> dict[str, float]:
    """Each video's extraction time from the last status table, carried over for the videos a
    resumed run keeps (their files hold no time). An unreadable table is no table."""
    try:
        table = pd.read_parquet(status_path, columns=["video", "seconds"])
    except (OSError, ValueError, KeyError):  # missing, half-written, or without the column
        return {}
    return dict(zip(table["video"], table["seconds"], strict=True))


def collect(index: pd.DataFrame, cfg: FacesConfig, fresh: Iterable[dict] = ()) -> pd.DataFrame:
    """Gather every video's file into ``faces.parquet`` and ``faces_status.parquet``."""
    fresh_by_video = {r["video"]: r for r in fresh}
    earlier = _earlier_seconds(cfg.status_path)
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
        fresh_run = fresh_by_video.get(r.name, {})
        seconds = fresh_run.get("seconds", earlier.get(r.name, vf.status.get("seconds")))
        statuses.append({"video": r.name, "part": r.part, **vf.status, "seconds": seconds})
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    status = pd.DataFrame(statuses)
    write_parquet(table, cfg.table_path)
    write_parquet(status, cfg.status_path)
    counts = status["status"].value_counts().to_dict() if len(status) else {}
    bad = {k: v for k, v in counts.items() if k != "ok"}
    if bad:
        skipped = status[status["status"] != "ok"]
        pairs = zip(skipped["video"], skipped["status"], strict=True)
        named = some([f"{video} ({what})" for video, what in pairs])
        log.warning(
            "faces: %d of %d videos without crops %s: %s; every one with its reason in %s",
            sum(bad.values()), len(status), bad, named, cfg.status_path,
        )  # fmt: skip
    log.info("faces: %d crops from %d videos -> %s", len(table), len(status), cfg.table_path)
    return table
