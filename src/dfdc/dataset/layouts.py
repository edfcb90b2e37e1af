"""Datasets read where they lie, in their own layouts: labels, originals, methods, compression
and identity groups follow from the folders, as in a real download.

- **DFDC**: part folders of ``.mp4`` with a ``metadata.json`` each (the competition's format).
- **FaceForensics++**: ``original_sequences/{youtube,actors}/<c>/videos/NNN.mp4`` and
  ``manipulated_sequences/<method>/<c>/videos/TTT_SSS.mp4`` (target TTT, source face SSS; the
  fake's original is TTT). ``TTT_SSS``, ``SSS_TTT`` and both originals share an identity group,
  so folds keep the pair together. The official ``train.json``/``val.json``/``test.json``
  (lists of pairs) set each video's split when present (in the root or ``splits/``).
- **Celeb-DF (v2)**: ``Celeb-real/idA_NNNN.mp4``, ``YouTube-real/NNNNN.mp4``,
  ``Celeb-synthesis/idA_idB_NNNN.mp4`` (original ``Celeb-real/idA_NNNN.mp4``), and
  ``List_of_testing_videos.txt`` as the test split. Groups follow the target identity.

Folders are walked following symbolic links (a dataset on another disk linked into place is
the usual setup; ``Path.rglob`` does not follow them before Python 3.13).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from dfdc.dataset.entries import VIDEO_SUFFIXES, MetadataError, VideoEntry, read_metadata

__all__ = [
    "LAYOUTS",
    "celebdf_entries",
    "detect_layout",
    "ffpp_entries",
    "file_problem",
    "find_metadata",
    "labelled_entries",
    "layout_entries",
    "walk",
]

FFPP_METHODS = (
    "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection",
)  # fmt: skip
LAYOUTS = ("dfdc", "ffpp", "celebdf")


def walk(root: Path) -> Iterator[Path]:
    """Every file below ``root``, sorted, following directory symlinks (once each)."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def detect_layout(root: str | Path) -> str:
    """``dfdc``, ``ffpp`` or ``celebdf``; a folder in none of them is a one-line error that
    says what each layout looks like."""
    root = Path(root)
    if not root.is_dir():
        raise MetadataError(f"{root}: not a folder")
    if (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir():
        return "ffpp"
    if (root / "Celeb-synthesis").is_dir() or (root / "Celeb-real").is_dir():
        return "celebdf"
    if find_metadata(root):
        return "dfdc"
    raise MetadataError(
        f"{root}: no known dataset layout (expected DFDC part folders with metadata.json, "
        "FaceForensics++ original_sequences/ + manipulated_sequences/, or Celeb-DF "
        "Celeb-real/ + Celeb-synthesis/)"
    )


def _videos(folder: Path) -> list[Path]:
    return (
        [p for p in walk(folder) if p.suffix.lower() in VIDEO_SUFFIXES] if folder.is_dir() else []
    )


def _ffpp_splits(root: Path) -> dict[str, str]:
    """Identity id (``NNN``) -> split, from the official lists of pairs."""
    out: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for folder in (root, root / "splits"):
            path = folder / f"{split}.json"
            if path.exists():
                try:
                    pairs = json.loads(path.read_text())
                except json.JSONDecodeError as exc:
                    raise MetadataError(f"{path}: not valid JSON (line {exc.lineno})") from None
                for pair in pairs:
                    for vid in pair:
                        out[str(vid)] = split
                break
    return out


def ffpp_entries(root: str | Path) -> list[VideoEntry]:
    root = Path(root)
    splits = _ffpp_splits(root)
    found: list[tuple[str, str, Path, str | None]] = []  # kind, compression, path, method
    for source in ("youtube", "actors"):
        for c_dir in sorted((root / "original_sequences" / source).glob("*")):
            found += [("real:" + source, c_dir.name, p, None) for p in _videos(c_dir / "videos")]
    for method in FFPP_METHODS:
        for c_dir in sorted((root / "manipulated_sequences" / method).glob("*")):
            found += [("fake", c_dir.name, p, method) for p in _videos(c_dir / "videos")]
    if not found:
        raise MetadataError(
            f"{root}: no videos under original_sequences/*/<c23|c40|raw>/videos or "
            "manipulated_sequences/<method>/<c>/videos"
        )
    several = len({c for _, c, _, _ in found}) > 1

    def name(stem: str, prefix: str, c: str) -> str:
        return f"{prefix}{stem}" + (f".{c}" if several else "") + ".mp4"

    entries = []
    for kind, c, path, method in found:
        stem = path.stem
        if kind.startswith("real"):
            source = kind.split(":")[1]
            prefix = "" if source == "youtube" else "actors_"
            entries.append(
                VideoEntry(
                    name=name(stem, prefix, c),
                    path=path,
                    label="REAL",
                    original=None,
                    part=f"ffpp_{c}",
                    split=splits.get(stem, "train"),
                    method=f"original_{source}",
                    dataset="ffpp",
                    compression=c,
                )
            )
            continue
        target = stem.split("_")[0]
        ids = sorted(re.findall(r"\d+", stem)[:2]) if method != "DeepFakeDetection" else [target]
        group = "ffpp:" + "-".join(ids)
        original = name(target, "", c) if method != "DeepFakeDetection" else None
        entries.append(
            VideoEntry(
                name=name(stem, f"{method}_", c),
                path=path,
                label="FAKE",
                original=original,
                part=f"ffpp_{c}",
                split=splits.get(target, "train"),
                method=method,
                dataset="ffpp",
                compression=c,
                group=group,
            )
        )
    # Originals join their pairs' groups through the fakes (TTT_SSS -> TTT, SSS_TTT -> SSS).
    return entries


def celebdf_entries(root: str | Path) -> list[VideoEntry]:
    root = Path(root)
    listed: dict[str, int] = {}
    test_list = root / "List_of_testing_videos.txt"
    if test_list.exists():
        for line in test_list.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                listed[parts[1].replace("\\", "/")] = int(parts[0])
    entries = []
    for folder, label in (
        ("Celeb-real", "REAL"),
        ("YouTube-real", "REAL"),
        ("Celeb-synthesis", "FAKE"),
    ):
        for path in _videos(root / folder):
            rel = f"{folder}/{path.name}"
            ids = re.findall(r"id\d+", path.stem)
            original = None
            if label == "FAKE":
                m = re.fullmatch(r"(id\d+)_id\d+_(\d+)", path.stem)
                original = f"{m.group(1)}_{m.group(2)}.mp4" if m else None
            entries.append(
                VideoEntry(
                    name=path.name,
                    path=path,
                    label=label,
                    original=original,
                    part=f"celebdf_{folder}",
                    split="test" if rel in listed else "train",
                    method="celebdf" if label == "FAKE" else f"original_{folder}",
                    dataset="celebdf",
                    group=f"celebdf:{ids[0]}" if ids else None,
                )
            )
    if not entries:
        raise MetadataError(f"{root}: no videos in Celeb-real/, YouTube-real/ or Celeb-synthesis/")
    return entries


def dfdc_entries(root: str | Path) -> list[VideoEntry]:
    metas = find_metadata(root)
    if not metas:
        raise MetadataError(f"{root}: no metadata.json found (expected DFDC part folders)")
    return [e for meta in metas for e in read_metadata(meta)]


def layout_entries(root: str | Path, layout: str = "auto") -> list[VideoEntry]:
    """The labelled videos of a dataset folder in its own layout (detected with ``auto``)."""
    kind = detect_layout(root) if layout == "auto" else layout
    return {"dfdc": dfdc_entries, "ffpp": ffpp_entries, "celebdf": celebdf_entries}[kind](root)


def find_metadata(root: str | Path) -> list[Path]:
    """Every metadata file below ``root``: ``metadata.json`` per folder, or ``*_metadata.json``."""
    root = Path(root)
    if root.is_file():
        return [root]
    return [p for p in walk(root) if p.name == "metadata.json" or p.name.endswith("_metadata.json")]


def labelled_entries(path: str | Path, missing: bool = False) -> list[VideoEntry]:
    """The videos under ``path`` (any supported layout) that have a label and a file: what
    evaluation and the robustness report score. ``missing``: those whose file is absent or
    cannot be opened too (:func:`file_problem` says why), for a caller that counts them."""
    return [
        e
        for e in layout_entries(Path(path))
        if e.label in ("REAL", "FAKE") and (missing or file_problem(e.path) is None)
    ]


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be opened as a file (None: it can): missing, a broken link, a
    symlink loop, a folder. A loop or a broken link is named as such rather than dropped."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if path.is_symlink():
            return f"broken symbolic link (to {os.readlink(path)})"
        return "file not found"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None
