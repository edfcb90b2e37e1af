"""Lay out the generated sample exactly as Kaggle ships DFDC.

``<raw>/train/dfdc_train_part_<k>/*.mp4`` with a ``metadata.json`` per part (fakes share their
original's part), ``<raw>/test_videos/*.mp4``, ``<raw>/sample_submission.csv``, and, since the
sample's truth is known, ``<raw>/test_labels.csv`` for local scoring.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfdc.core.config import SampleConfig
from dfdc.core.executor import process_pool
from dfdc.core.progress import progress
from dfdc.core.video import write_video
from dfdc.dataset.sample.exact import opencv_baseline
from dfdc.dataset.sample.manipulate import self_blend, swap_face
from dfdc.dataset.sample.photos import load_photos
from dfdc.dataset.sample.scene import Actor, Scene

log = logging.getLogger(__name__)

__all__ = ["VideoPlan", "build_sample", "plan_sample", "render_video"]

METHODS = ("faceswap", "selfblend")


@dataclass(frozen=True)
class VideoPlan:
    name: str
    folder: str  # relative to the raw dir
    split: str
    label: str
    original: str | None
    method: str | None
    scene_seed: int
    actor: int  # index into the actor table
    portrait: bool
    swap_source: int | None = None


def _actors() -> list[tuple[int, bool]]:
    """(photo index, mirrored): four looks from two people."""
    return [(0, False), (1, False), (0, True), (1, True)]


def _name(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=10)) + ".mp4"
        if name not in taken:
            taken.add(name)
            return name


def plan_sample(cfg: SampleConfig) -> list[VideoPlan]:
    rng = np.random.default_rng(cfg.seed)
    taken: set[str] = set()
    actors = _actors()
    plans: list[VideoPlan] = []

    def family(
        folder: str, split: str, k: int, portrait: bool, keep_real: bool, fakes: tuple[str, ...]
    ) -> None:
        actor = k % len(actors)
        seed = int(rng.integers(2**31))
        real = _name(rng, taken)
        if keep_real:
            plans.append(VideoPlan(real, folder, split, "REAL", None, None, seed, actor, portrait))
        for method in fakes:
            other = None
            if method == "faceswap":
                # Another person, so the swap really changes identity.
                photo = actors[actor][0]
                other = next(
                    i for i, a in enumerate(actors) if a[0] != photo and a[1] == (k % 2 == 1)
                )
            plans.append(
                VideoPlan(
                    _name(rng, taken),
                    folder,
                    split,
                    "FAKE",
                    real,
                    method,
                    seed,
                    actor,
                    portrait,
                    other,
                )
            )

    k = 0
    for part in range(cfg.parts):
        folder = f"train/dfdc_train_part_{part}"
        for _ in range(cfg.reals_per_part):
            family(folder, "train", k, part in cfg.portrait_parts, True, METHODS)
            k += 1
    for i in range(max(cfg.test_reals, cfg.test_fakes)):
        method = METHODS[i % 2]
        fakes = (method,) if i < cfg.test_fakes else ()
        family("test_videos", "test", k, False, i < cfg.test_reals, fakes)
        k += 1
    return plans


def render_video(plan: VideoPlan, cfg: SampleConfig, path: Path) -> None:
    """Render and encode one clip; its bytes are a function of ``plan`` and ``cfg`` alone, on
    any x86-64 CPU and with any number of workers (:mod:`dfdc.dataset.sample.exact`)."""
    with opencv_baseline():
        _render(plan, cfg, path)


def _render(plan: VideoPlan, cfg: SampleConfig, path: Path) -> None:
    photos = load_photos()
    table = _actors()
    photo_idx, flip = table[plan.actor]
    w, h = (cfg.height, cfg.width) if plan.portrait else (cfg.width, cfg.height)
    face_frac = 0.30 + 0.12 * ((plan.scene_seed % 7) / 6)
    actor = Actor(photos[photo_idx], flip=flip, face_frac=face_frac)
    scene = Scene((actor,), w, h, seed=plan.scene_seed, noise_sigma=cfg.noise_sigma)
    # Manipulation jitter has its own stream, so a fake's frames never disturb the scene's.
    rng = np.random.default_rng(
        [plan.scene_seed, 1 + METHODS.index(plan.method) if plan.method else 0]
    )

    def frames():
        for t in range(cfg.frames):
            clean = scene.render_clean(t)
            if plan.method == "faceswap":
                src_photo, src_flip = table[plan.swap_source]
                clean = swap_face(clean, scene.landmarks(t)[0], photos[src_photo], src_flip, rng)
            elif plan.method == "selfblend":
                clean = self_blend(clean, scene.landmarks(t)[0], rng)
            yield scene.finish(clean, t)

    write_video(path, frames(), fps=cfg.fps, qp=cfg.qp, audio_seconds=cfg.frames / cfg.fps)


def _render_job(job: tuple[VideoPlan, SampleConfig, Path]) -> None:
    render_video(*job)


def build_sample(cfg: SampleConfig, raw_dir: str | Path, workers: int = 1) -> list[VideoPlan]:
    """Generate the whole sample into ``raw_dir`` (replaced atomically when complete)."""
    raw_dir = Path(raw_dir)
    tmp = raw_dir.with_name(raw_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    plans = plan_sample(cfg)
    for plan in plans:
        (tmp / plan.folder).mkdir(parents=True, exist_ok=True)
    jobs = [(plan, cfg, tmp / plan.folder / plan.name) for plan in plans]
    if workers > 1:
        with process_pool(workers) as pool:
            done = pool.map(_render_job, jobs)
            for _ in progress(done, total=len(jobs), desc="sample videos", unit="video"):
                pass
    else:
        for job in progress(jobs, desc="sample videos", unit="video"):
            _render_job(job)
    for folder in sorted({p.folder for p in plans if p.split == "train"}):
        meta = {}
        for p in plans:
            if p.folder == folder:
                entry = {"label": p.label, "split": p.split}
                if p.method:
                    entry["method"] = p.method
                if p.original:
                    entry["original"] = p.original
                meta[p.name] = entry
        (tmp / folder / "metadata.json").write_text(json.dumps(meta, indent=1) + "\n")
    tests = [p for p in plans if p.split == "test"]
    (tmp / "sample_submission.csv").write_text(
        "filename,label\n" + "".join(f"{p.name},0.5\n" for p in sorted(tests, key=lambda p: p.name))
    )
    (tmp / "test_labels.csv").write_text(
        "filename,label\n"
        + "".join(
            f"{p.name},{int(p.label == 'FAKE')}\n" for p in sorted(tests, key=lambda p: p.name)
        )
    )
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    tmp.rename(raw_dir)
    log.info("sample: %d videos in %s", len(plans), raw_dir)
    return plans
