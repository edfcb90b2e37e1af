"""Where an artefact came from: the git revision (and whether the tree had edits), file
digests, and the one config digest every resumable output is keyed by (faces, masks,
checkpoints, embedding caches), so each can be traced to what built it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

__all__ = ["config_digest", "git_revision", "sha256_file"]


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


def config_digest(obj: object) -> str:
    """12 hex digits of SHA-1 over ``obj`` as sorted JSON: changes whenever a setting in it
    does (a key for resuming work, not a security measure)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]
