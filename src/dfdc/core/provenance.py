"""Where an artefact came from: the git revision (and whether the tree had edits) and file
digests, recorded next to submissions and releases so each can be traced to what built it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

__all__ = ["git_revision", "sha256_file"]


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
