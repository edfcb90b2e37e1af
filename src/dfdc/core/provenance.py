"""Where an artefact came from: the git revision (and whether the tree had edits), file
digests, and the one config digest every resumable output is keyed by (faces, masks,
checkpoints, embedding caches), so each can be traced to what built it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from dfdc.core.config import DataConfig

__all__ = [
    "config_digest",
    "content_digest",
    "describe_training_data",
    "git_revision",
    "sample_only",
    "sha256_file",
    "training_data",
]


def git_revision() -> dict:
    """HEAD and a dirty flag; empty when not in a git checkout (a Kaggle kernel, say)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "revision": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def sha256_file(path: str | Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def content_digest(path: str | Path, block: int = 1 << 16) -> str:
    """12 hex digits over a file's size and its first and last ``block`` bytes: changes when
    the file is replaced by another (a regenerated sample clip under the same name), costs two
    small reads however large the video, and survives copies and checkouts (unlike mtime)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(block)
            f.seek(max(0, size - block))
            tail = f.read(block)
    except OSError:
        return "missing"
    return hashlib.sha1(str(size).encode() + head + tail).hexdigest()[:12]


def config_digest(obj: object) -> str:
    """12 hex digits of SHA-1 over ``obj`` as sorted JSON: changes whenever a setting in it
    does (a key for resuming work, not a security measure)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def training_data(data: DataConfig, folds: pd.DataFrame) -> dict:
    """What a model was trained on, saved in its checkpoint: the data source, the dataset
    folders (or the sample's seed), and the labelled videos of the folds with a digest of their
    names and labels, so nobody takes a model of the generated sample for a detector of real
    deepfakes, and two models can be told apart by their data."""
    record: dict = {"source": data.source}
    if data.source == "sample":
        record["sample_seed"] = data.sample.seed
    elif data.source == "kaggle":
        record["competition"] = data.kaggle.competition
    else:
        record["paths"] = [data.local_path]
    if data.extra_paths:
        record["paths"] = [*record.get("paths", []), *data.extra_paths]
    rows = sorted(zip(folds["name"].astype(str), folds["label"].astype(str), strict=True))
    record["videos"] = len(rows)
    record["videos_digest"] = config_digest(rows)
    return record


def sample_only(records: list[dict]) -> bool:
    """Whether every model was trained on the generated sample alone (sample models check
    the pipeline; they detect no real deepfake): what every page and command warns of."""
    return bool(records) and all(r and r.get("source") == "sample" for r in records)


def describe_training_data(records: list[dict]) -> str:
    """One line for a user: what the models in hand were trained on (their ``training_data``
    records; a checkpoint from before they were saved has none)."""
    if not records or not all(records):
        return "trained on: not recorded in these checkpoints (made before it was saved)"
    kinds = {json.dumps(r, sort_keys=True) for r in records}
    parts = []
    for r in (json.loads(k) for k in sorted(kinds)):
        if r["source"] == "sample":
            what = f"the generated sample (seed {r['sample_seed']})"
        elif r["source"] == "kaggle":
            what = f"the Kaggle competition files ({r['competition']})"
        else:
            what = f"{r['source']} data at {', '.join(r['paths'])}"
        if r["source"] == "sample" and r.get("paths"):
            what += f" plus {', '.join(r['paths'])}"
        parts.append(f"{what}, {r['videos']} labelled videos (digest {r['videos_digest']})")
    line = "trained on: " + "; ".join(parts)
    if sample_only(records):
        line += (
            ". Sample models check the pipeline; they do not detect real deepfakes "
            "(train on real data: make real DATA=PATH, docs/real-data.md)"
        )
    return line
