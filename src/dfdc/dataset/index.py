"""The video index: one row a video, from DFDC ``metadata.json`` files plus probing.

Every video the metadata names gets a row, readable or not: a missing, empty, truncated or
non-video file stays in the index with its reason, so later stages can skip it and the EDA can
list it, instead of the run dying on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from dfdc.core.logs import some
from dfdc.core.progress import progress
from dfdc.core.video import VideoInfo, probe
from dfdc.dataset.entries import VIDEO_SUFFIXES, MetadataError, VideoEntry, read_metadata
from dfdc.dataset.layouts import layout_entries

log = logging.getLogger(__name__)

__all__ = ["INDEX_COLUMNS", "build_index", "collect_entries"]

INDEX_COLUMNS = [
    "name", "path", "label", "original", "part", "split", "method", "dataset", "compression",
    "group",
    "width", "height", "rotation", "fps", "frame_count", "duration", "codec", "has_audio",
    "bytes", "readable", "reason",
]  # fmt: skip


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
    listed_in: str | Path | None = None,
) -> pd.DataFrame:
    """Probe every entry (in threads: PyAV releases the GIL while it parses) into a frame.
    Unreadable or missing files are named in one warning (the first few), which says where
    the full list is: ``listed_in``, the index file the caller writes (its ``readable`` and
    ``reason`` columns)."""
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
        rows = list(
            progress(pool.map(one, entries), total=len(entries), desc="probe", unit="video")
        )
    df = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    df = df.astype(
        {"rotation": "Int64", "frame_count": "Int64", "width": "Int64", "height": "Int64"}
    )
    bad = df[~df["readable"]]
    if len(bad):
        reasons = bad["reason"].value_counts().to_dict()
        named = some([f"{p} ({r})" for p, r in zip(bad["path"], bad["reason"], strict=True)])
        where = f"{listed_in} (readable, reason)" if listed_in else "the index's reason column"
        log.warning(
            "%d of %d videos unreadable or missing %s: %s; every one in %s",
            len(bad), len(df), reasons, named, where,
        )  # fmt: skip
    return df
