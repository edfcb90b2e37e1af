"""The video index: one row a video, from DFDC ``metadata.json`` files plus probing.

Every video the metadata names gets a row, readable or not: a missing, empty, truncated or
non-video file stays in the index with its reason, so later stages can skip it and the EDA can
list it, instead of the run dying on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from dfdc.core.errors import UserError
from dfdc.core.video import VideoInfo, probe

log = logging.getLogger(__name__)

__all__ = [
    "INDEX_COLUMNS",
    "MetadataError",
    "VideoEntry",
    "build_index",
    "find_metadata",
    "read_metadata",
]

INDEX_COLUMNS = [
    "name", "path", "label", "original", "part", "split", "method", "dataset", "compression",
    "group",
    "width", "height", "rotation", "fps", "frame_count", "duration", "codec", "has_audio",
    "bytes", "readable", "reason",
]  # fmt: skip

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


def find_metadata(root: str | Path) -> list[Path]:
    """Every metadata file below ``root``: ``metadata.json`` per folder, or ``*_metadata.json``."""
    from dfdc.dataset.layouts import walk

    root = Path(root)
    if root.is_file():
        return [root]
    return [p for p in walk(root) if p.name == "metadata.json" or p.name.endswith("_metadata.json")]


def _test_entries(test_dir: Path) -> list[VideoEntry]:
    return [
        VideoEntry(p.name, p, None, None, test_dir.name, "test")
        for p in sorted(test_dir.iterdir())
        if p.suffix.lower() in VIDEO_SUFFIXES
    ]


def collect_entries(
    train_root: str | Path | None,
    test_dir: str | Path | None = None,
    extra_roots: tuple[str | Path, ...] = (),
    layout: str = "auto",
) -> list[VideoEntry]:
    """The entries of ``train_root`` (a dataset folder in the given or detected layout), of
    each extra root (detected), and the unlabelled ``test_dir``; names must be unique."""
    from dfdc.dataset.layouts import layout_entries

    entries: list[VideoEntry] = []
    if train_root is not None:
        if Path(train_root).is_file():
            entries.extend(read_metadata(train_root))
        else:
            entries.extend(layout_entries(train_root, layout))
    for root in extra_roots:
        entries.extend(layout_entries(root))
    if test_dir is not None and Path(test_dir).is_dir():
        entries.extend(_test_entries(Path(test_dir)))
    seen: dict[str, VideoEntry] = {}
    for e in entries:
        if e.name in seen:
            raise MetadataError(
                f"{e.path.parent}: video {e.name!r} is listed again"
                f" (also in {seen[e.name].path.parent});"
                " DFDC file names are unique"
            )
        seen[e.name] = e
    return entries


def _display_path(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None:
        try:
            return str(path.resolve().relative_to(relative_to.resolve()))
        except ValueError:
            pass
    return str(path.resolve())


def build_index(
    entries: Iterable[VideoEntry],
    workers: int = 2,
    relative_to: str | Path | None = None,
) -> pd.DataFrame:
    """Probe every entry (in threads: PyAV releases the GIL while it parses) into a frame."""
    entries = list(entries)
    rel = Path(relative_to) if relative_to is not None else None

    def one(e: VideoEntry) -> dict:
        info = (
            probe(e.path) if e.path.exists() else VideoInfo(readable=False, reason="missing file")
        )
        row = {
            "name": e.name,
            "path": _display_path(e.path, rel),
            "label": e.label,
            "original": e.original,
            "part": e.part,
            "split": e.split,
            "method": e.method,
            "dataset": e.dataset,
            "compression": e.compression,
            "group": e.group,
        }
        row.update(info.as_dict())
        return row

    with ThreadPoolExecutor(max(1, workers)) as pool:
        rows = list(tqdm(pool.map(one, entries), total=len(entries), desc="probe", unit="video"))
    df = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    df = df.astype(
        {"rotation": "Int64", "frame_count": "Int64", "width": "Int64", "height": "Int64"}
    )
    bad = df[~df["readable"]]
    if len(bad):
        reasons = bad["reason"].value_counts().to_dict()
        log.warning("%d of %d videos unreadable or missing: %s", len(bad), len(df), reasons)
    return df
