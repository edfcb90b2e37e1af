"""One video of a dataset as its metadata describes it (:class:`VideoEntry`), and the DFDC
``metadata.json`` reader; every layout (:mod:`dfdc.dataset.layouts`) yields these."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dfdc.core.errors import UserError

__all__ = ["VIDEO_SUFFIXES", "MetadataError", "VideoEntry", "read_metadata"]

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


class MetadataError(UserError, ValueError):
    """A metadata file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class VideoEntry:
    name: str
    path: Path
    label: str | None
    original: str | None
    part: str
    split: str
    method: str | None = None
    dataset: str = "dfdc"
    compression: str | None = None  # FaceForensics++: c0 | c23 | c40 | raw
    # Videos sharing a group never straddle folds (an FF++ identity pair, a Celeb-DF identity).
    group: str | None = None


def _part_of(meta_path: Path) -> str:
    """``dfdc_train_part_0/metadata.json`` -> ``dfdc_train_part_0``; a label file named
    ``<part>_metadata.json`` (as in a metadata-only download) -> ``<part>``."""
    if meta_path.name == "metadata.json":
        return meta_path.parent.name
    return meta_path.name.removesuffix("_metadata.json").removesuffix(".json")


def read_metadata(meta_path: str | Path) -> list[VideoEntry]:
    """Parse one DFDC metadata file. REAL rows may omit ``original`` or carry null."""
    meta_path = Path(meta_path)
    try:
        raw = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{meta_path}: not valid JSON (line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise MetadataError(f"{meta_path}: expected an object mapping file names to entries")
    part = _part_of(meta_path)
    entries = []
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise MetadataError(f"{meta_path}: entry {name!r} is not an object")
        label = entry.get("label")
        if label not in ("REAL", "FAKE"):
            raise MetadataError(
                f"{meta_path}: entry {name!r} has label {label!r}, not REAL or FAKE"
            )
        original = entry.get("original") or None
        if label == "REAL":
            original = None
        entries.append(
            VideoEntry(
                name=name,
                path=meta_path.parent / name,
                label=label,
                original=original,
                part=part,
                split=str(entry.get("split") or "train"),
                method=entry.get("method") or None,
                dataset=str(entry.get("dataset") or "dfdc"),
                compression=entry.get("compression") or None,
            )
        )
    return entries
