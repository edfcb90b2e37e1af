"""Fault matrix, caches (docs/faults.md): an empty or half-written face file, mask or
compressed copy is treated as missing, named in one warning, and made again, the same as a
clean run made it; the files around it are left alone."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdc.core.config import CompressConfig, DiffMasksConfig
from dfdc.faces.batch import run_faces
from dfdc.faces.copies import run_copies
from dfdc.faces.store import load_video_faces
from dfdc.masks.compute import build_masks
from tests.conftest import faces_cfg


def _corrupt(files: list[Path]) -> list[Path]:
    """The first file emptied, the second cut to half its bytes (a run killed while the disk
    was full); the two, in that order."""
    empty, half = files[0], files[1]
    empty.write_bytes(b"")
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    return [empty, half]


def _warned(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and str(path) in r.getMessage()
    ]
    assert len(lines) == 1 and "\n" not in lines[0], (path, caplog.text)
    return lines


def _same_faces(a, b) -> None:
    """The same crops, rows and status (less how long it took)."""
    timeless = [{k: v for k, v in x.status.items() if k != "seconds"} for x in (a, b)]
    assert a.video == b.video and timeless[0] == timeless[1] and a.params_hash == b.params_hash
    pd.testing.assert_frame_equal(a.rows(), b.rows())
    assert a.crops == b.crops


def _stamps(files) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in files}


def test_a_corrupt_face_file_is_redone_and_named(tiny_stage, tmp_path, caplog):
    shutil.copytree(tiny_stage / "faces", tmp_path / "faces")
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    cfg = faces_cfg(tmp_path)
    assert Path(cfg.out_dir) == tmp_path / "faces"
    files = sorted((tmp_path / "faces").rglob("*.npz"))
    clean = {f: load_video_faces(f) for f in files}
    bad = _corrupt(files)
    others = _stamps(files[2:])
    with caplog.at_level(logging.WARNING):
        table = run_faces(index, cfg)
    for f in bad:
        _warned(caplog, f)
        _same_faces(load_video_faces(f), clean[f])
    assert _stamps(files[2:]) == others  # only the two were made again
    assert set(table["file"]) == {str(f) for f in files}


def test_a_corrupt_mask_is_redone_and_named(tiny_stage, tmp_path, caplog):
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    cfg = DiffMasksConfig(out_dir=str(tmp_path / "masks"), table_path=str(tmp_path / "m.pq"))
    clean = build_masks(faces, index, cfg)
    files = sorted((tmp_path / "masks").glob("*.npz"))
    assert len(files) >= 2 and (clean.status["status"] == "ok").all()
    before = {}
    for f in files:
        with np.load(f) as z:
            before[f] = {k: z[k] for k in z.files}
    bad = _corrupt(files)
    with caplog.at_level(logging.WARNING):
        again = build_masks(faces, index, cfg)
    pd.testing.assert_frame_equal(again.table, clean.table)
    assert (again.status["status"] == "ok").all()
    for f in bad:
        _warned(caplog, f)
        with np.load(f) as z:
            assert set(z.files) == set(before[f])
            for k in z.files:
                assert np.array_equal(z[k], before[f][k]), (f, k)


def test_a_corrupt_compressed_copy_is_redone_and_named(tiny_stage, tmp_path, caplog):
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    # workers 1: made in this process, where the log capture sees the warning.
    cfg = CompressConfig(
        train_crf=(40,), train_downscale=(), validate_crf=(40,), workers=1,
        out_dir=str(tmp_path / "c"), table_path=str(tmp_path / "c.pq"),
    )  # fmt: skip
    clean = run_copies(index, faces, cfg, crop_size=224)
    files = sorted(Path(f) for f in clean["file"])
    assert len(files) >= 2 and (clean["status"] == "ok").all()
    before = {f: load_video_faces(f) for f in files}
    bad = _corrupt(files)
    others = _stamps(files[2:])
    with caplog.at_level(logging.WARNING):
        again = run_copies(index, faces, cfg, crop_size=224)
    pd.testing.assert_frame_equal(again, clean)
    for f in bad:
        _warned(caplog, f)
        _same_faces(load_video_faces(f), before[f])
    assert _stamps(files[2:]) == others
