"""The robustness report: what each black-box distortion costs the fitted ensemble (the
robustness stage, :mod:`dfdc.stages.robustness`, and ``dfdc robustness PATH...``).

Every held-out video is scored clean and under each distortion and severity through the one
inference path (:func:`dfdc.inference.predict.load_bundle`), with models that never trained on
it: a training video by its own fold's models only (as its out-of-fold prediction was made),
a labelled test video or a video of a folder given to ``dfdc robustness`` by the whole ensemble.
Per distortion and level: log loss, AUC, accuracy, n and the change from the same videos clean.

A distortion that does not apply to a clip (too short for the rate change, too small for the
downscale) is recorded as skipped with its reason; a clip that cannot be read is a failure line;
neither stops the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dfdc.core.config import Params, RobustnessConfig
from dfdc.core.io import write_text
from dfdc.core.layout import fold_name
from dfdc.core.metrics import binary_metrics
from dfdc.core.progress import progress
from dfdc.core.video import VideoError
from dfdc.dataset.layouts import file_problem, labelled_entries
from dfdc.inference.predict import bundle_from_params
from dfdc.inference.submission import test_truth
from dfdc.robustness.distort import DISTORTIONS, NotApplicable, distort_video

__all__ = [
    "ALL",
    "CLEAN",
    "Job",
    "RobustnessResult",
    "example_clips",
    "held_out_jobs",
    "metrics_table",
    "robustness_metrics",
    "run_paths",
    "score_jobs",
    "write_plots",
]

CLEAN = "clean"
ALL = "all"  # the group of videos any model may score (no fold of theirs trained on them)


@dataclass(frozen=True)
class Job:
    """One held-out video and the models allowed to score it (``group``: a fold or ``all``)."""

    name: str
    path: Path
    label: int  # 1 FAKE, 0 REAL
    group: str


@dataclass
class RobustnessResult:
    scores: pd.DataFrame  # one row a (video, distortion, level): status, prob
    metrics: dict  # what metrics/robustness.json holds
    examples: dict[str, Path] = field(default_factory=dict)  # distortion -> a distorted clip


def _pick(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows, half REAL and half FAKE where there are enough (0: all)."""
    if not n or len(frame) <= n:
        return frame
    rng = np.random.default_rng(seed)
    fakes = frame[frame["label"] == "FAKE"]
    reals = frame[frame["label"] == "REAL"]
    k_real = min(len(reals), n // 2)
    k_fake = min(len(fakes), n - k_real)
    k_real = min(len(reals), n - k_fake)
    take = [
        *rng.choice(reals.index.to_numpy(), k_real, replace=False),
        *rng.choice(fakes.index.to_numpy(), k_fake, replace=False),
    ]
    return frame.loc[sorted(take)]


def held_out_jobs(params: Params, cfg: RobustnessConfig) -> list[Job]:
    """The workspace's held-out videos: each trained video with its fold (scored by that fold's
    models), and the labelled test videos (scored by the whole ensemble) when asked."""
    index = pd.read_parquet(params.data.index_path)
    folds = pd.read_parquet(params.cv.path)[["name", "fold"]]
    train = index.merge(folds, on="name")
    train = train[train["label"].isin(["REAL", "FAKE"])]
    train = train[train["fold"].isin(params.cv.folds)]
    jobs = [
        Job(r.name, Path(r.path), int(r.label == "FAKE"), fold_name(int(r.fold)))
        for r in _pick(train, cfg.videos, cfg.seed).itertuples()
    ]
    if cfg.include_test:
        truth = test_truth(params.data.raw_dir, index)
        test = index[(index["split"] == "test") & index["name"].isin(truth.index)]
        test = test.assign(label=np.where(truth[test["name"]].to_numpy() == 1, "FAKE", "REAL"))
        jobs += [
            Job(r.name, Path(r.path), int(r.label == "FAKE"), ALL)
            for r in _pick(test, cfg.videos, cfg.seed).itertuples()
        ]
    return jobs


def _versions(cfg: RobustnessConfig) -> list[tuple[str, float]]:
    return [(CLEAN, 0.0)] + [(n, lv) for n, levels in cfg.levels().items() for lv in levels]


def distorted_path(out_dir: str | Path, name: str, level: float, video: Path) -> Path:
    return Path(out_dir) / name / f"{level:g}" / f"{video.stem}.mp4"


def score_jobs(
    jobs: list[Job],
    bundle_for: Callable[[str], object],
    cfg: RobustnessConfig,
    out_dir: str | Path,
) -> pd.DataFrame:
    """Score each job's clean clip and its distorted copies (made once into ``out_dir`` and
    reused) with ``bundle_for(job.group)``; one row a (video, distortion, level). A clip that
    cannot be read (or is missing) is one ``failed`` row; whoever shows the result names it
    (:func:`failure_lines`), once."""
    rows = []
    versions = _versions(cfg)
    by_group: dict[str, list[Job]] = {}
    for job in jobs:
        by_group.setdefault(job.group, []).append(job)
    bar = progress(total=len(jobs) * len(versions), desc="robustness", unit="clip")
    for group, group_jobs in sorted(by_group.items()):
        bundle = bundle_for(group)
        for job in group_jobs:
            for name, level in versions:
                bar.update()
                row = {"video": job.name, "group": group, "label": job.label,
                       "distortion": name, "level": level, "status": "ok", "reason": "",
                       "prob": np.nan, "models": ""}  # fmt: skip
                path = job.path
                problem = file_problem(path) if name == CLEAN else None
                if problem is not None:  # missing, a broken link, a loop: one row, not eleven
                    rows.append({**row, "status": "failed", "reason": problem})
                    bar.update(len(versions) - 1)
                    break
                if name != CLEAN:
                    path = distorted_path(out_dir, name, level, job.path)
                    try:
                        if not path.exists():
                            distort_video(job.path, path, name, level, cfg.seed, cfg.base_crf)
                    except NotApplicable as exc:
                        rows.append({**row, "status": "skipped", "reason": str(exc)})
                        continue
                    except (VideoError, OSError, ValueError) as exc:
                        rows.append({**row, "status": "failed", "reason": str(exc)})
                        continue
                pred = bundle.score(path)
                if pred.status == "unreadable":
                    rows.append({**row, "status": "failed", "reason": str(pred.reason)})
                    if name == CLEAN:  # one line for a clip that cannot be read at all
                        bar.update(len(versions) - 1)
                        break
                    continue
                # A clip with no face scores 0.5, as it would in a submission. ``models``:
                # which checkpoints scored it (a training video: its own fold's only).
                models = ",".join(sorted(pred.frame_probs))
                rows.append({**row, "status": pred.status, "reason": pred.reason or "",
                             "prob": pred.prob, "models": models})  # fmt: skip
    bar.close()
    return pd.DataFrame(rows)


def failure_lines(metrics: dict) -> list[str]:
    """One line a failed (video, distortion, level) of :func:`robustness_metrics`: what the
    stage logs and ``dfdc robustness`` prints on stderr."""
    return [
        f"{row['video']} ({row['distortion']} {row['level']:g}): {row['reason']}"
        for row in metrics["failed"]
    ]


def _summary(y: np.ndarray, p: np.ndarray) -> dict:
    m = binary_metrics(y, p)
    return {k: (None if k == "auc" and len(np.unique(y)) < 2 else m[k])
            for k in ("logloss", "auc", "accuracy", "n")}  # fmt: skip


def robustness_metrics(scores: pd.DataFrame, cfg: RobustnessConfig) -> dict:
    """Per distortion and level: log loss, AUC, accuracy, n, and the change from the same
    videos clean; the skipped and failed (video, distortion, level) with their reasons."""
    scored = scores[scores["status"].isin(["ok", "no_face"])]
    clean = scored[scored["distortion"] == CLEAN].set_index("video")
    out: dict = {
        "clean": _summary(clean["label"].to_numpy(), clean["prob"].to_numpy())
        if len(clean)
        else {},
        "distortions": {},
        "skipped": scores[scores["status"] == "skipped"][
            ["video", "distortion", "level", "reason"]
        ].to_dict("records"),
        "failed": scores[scores["status"] == "failed"][
            ["video", "distortion", "level", "reason"]
        ].to_dict("records"),
        "no_face": int((scored["status"] == "no_face").sum()),
        "videos": int(scores["video"].nunique()),
        # Videos with no clean score (missing, unreadable): what the exit status counts.
        "unscored": int(
            scores.loc[
                (scores["distortion"] == CLEAN) & (scores["status"] == "failed"), "video"
            ].nunique()
        ),
        "groups": sorted(scores["group"].unique().tolist()) if len(scores) else [],
        "seed": cfg.seed,
        "base_crf": cfg.base_crf,
    }
    for name, levels in cfg.levels().items():
        d = DISTORTIONS[name]
        entry: dict = {"unit": d.unit, "levels": {}}
        for level in levels:
            g = scored[(scored["distortion"] == name) & (scored["level"] == level)]
            g = g[g["video"].isin(clean.index)]
            if g.empty:
                entry["levels"][f"{level:g}"] = {"n": 0}
                continue
            m = _summary(g["label"].to_numpy(), g["prob"].to_numpy())
            base = clean.loc[g["video"]]
            b = _summary(base["label"].to_numpy(), base["prob"].to_numpy())
            m["delta_logloss"] = m["logloss"] - b["logloss"]
            m["delta_auc"] = None if m["auc"] is None or b["auc"] is None else m["auc"] - b["auc"]
            m["delta_accuracy"] = m["accuracy"] - b["accuracy"]
            entry["levels"][f"{level:g}"] = m
        out["distortions"][name] = entry
    return out


def metrics_table(metrics: dict) -> pd.DataFrame:
    """One row a (distortion, level): the JSON as a table (the notebook shows it)."""
    rows = [{"distortion": CLEAN, "level": "", **metrics.get("clean", {})}]
    for name, entry in metrics["distortions"].items():
        for level, m in entry["levels"].items():
            rows.append({"distortion": name, "level": level, **m})
    return pd.DataFrame(rows)


def write_plots(metrics: dict, out: str | Path) -> None:
    """One CSV a distortion (severity 0 = clean, then its levels mildest first) for ``dvc
    plots``: log loss and AUC against severity."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean = metrics.get("clean", {})
    for name, entry in metrics["distortions"].items():
        lines = ["severity,level,logloss,auc"]
        lines.append(f"0,clean,{clean.get('logloss', '')},{clean.get('auc') or ''}")
        for k, (level, m) in enumerate(entry["levels"].items(), start=1):
            lines.append(f"{k},{level},{m.get('logloss', '')},{m.get('auc') or ''}")
        write_text("\n".join(lines) + "\n", out / f"{name}.csv")


def example_clips(
    cfg: RobustnessConfig, out_dir: str | Path, jobs: Iterable[Job]
) -> dict[str, Path]:
    """For the first job's video: distortion -> its strongest version's file, where it was
    written (the notebook shows a frame of each)."""
    jobs = list(jobs)
    if not jobs:
        return {}
    job = jobs[0]
    out = {CLEAN: job.path}
    for name, levels in cfg.levels().items():
        path = distorted_path(out_dir, name, levels[-1], job.path)
        if path.exists():
            out[name] = path
    return out


def run_paths(
    params: Params, paths: list[str | Path], out_dir: str | Path, models: str | Path | None = None
) -> RobustnessResult:
    """``dfdc robustness PATH...``: every labelled video under the folders (any supported
    layout), scored with the fitted ensemble (all folds: a set held out from training), or
    with the checkpoints under ``models`` averaged equally."""
    cfg = params.robustness
    jobs = [
        Job(e.name, e.path, int(e.label == "FAKE"), ALL)
        for p in paths
        for e in labelled_entries(Path(p), missing=True)  # a missing file is counted, failed
    ]
    if not jobs:
        raise ValueError(f"no labelled videos under {', '.join(map(str, paths))}")
    ens = None if models else Path(params.ensemble.ensemble_path)
    bundle = bundle_from_params(params, ensemble=ens, models=models)
    scores = score_jobs(jobs, lambda _: bundle, cfg, out_dir)
    metrics = robustness_metrics(scores, cfg)
    return RobustnessResult(scores, metrics, example_clips(cfg, out_dir, jobs))
