"""Fault matrix, values (data): a faces run that would mark every video unreadable stops in
one line and leaves the good face files byte-identical; the data and faces stages name the
files they skipped and say where the full list is."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dfdc.cli import main
from dfdc.core.io import write_parquet
from dfdc.dataset.entries import VideoEntry
from dfdc.dataset.index import build_index, collect_entries
from dfdc.faces.batch import FacesError, run_faces
from tests.conftest import faces_cfg, write_params


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.npz"))}


@pytest.fixture
def extracted(tiny_stage, tmp_path) -> Path:
    """A private copy of the tiny sample's index and face files (made with ``faces_cfg``)."""
    shutil.copytree(tiny_stage / "faces", tmp_path / "faces")
    shutil.copy(tiny_stage / "videos.parquet", tmp_path / "videos.parquet")
    return tmp_path


def test_a_run_that_fails_every_video_keeps_the_face_files(extracted, capsys):
    """The videos gone (a data disk not mounted, an index from elsewhere): every video would
    be "unreadable"; the stage stops with one line and no face file changes."""
    before = _snapshot(extracted / "faces")
    assert len(before) >= 6 and all(len(b) > 5000 for b in before.values())
    index = pd.read_parquet(extracted / "videos.parquet")
    index["path"] = [str(extracted / "unmounted" / Path(p).name) for p in index["path"]]
    write_parquet(index, extracted / "videos.parquet")
    params = write_params(extracted / "params.yaml", extracted, faces={"frames": 8,
                          "detect_every": 4, "workers": 1})  # fmt: skip
    assert main(["faces", "--params", str(params)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("dfdc ")]
    assert len(lines) == 1, lines  # the rest of stderr is the progress bar
    err = lines[0]
    assert err.startswith("dfdc faces: error: faces: every one of the 6 videos failed: ")
    assert "file not found" in err and "existing face files are kept" in err
    assert _snapshot(extracted / "faces") == before  # byte-identical
    # The same through the library call the notebook makes.
    with pytest.raises(FacesError, match="every one of the 6 videos failed"):
        run_faces(index, faces_cfg(extracted, detect_every=4))
    assert _snapshot(extracted / "faces") == before


def test_one_unreadable_video_is_written_and_named(extracted, caplog):
    """Only one video gone: that one is marked (its file says unreadable), the others are
    kept, and the warning names it and where every skipped video is listed."""
    index = pd.read_parquet(extracted / "videos.parquet")
    train = index[index["split"] == "train"]
    gone = train[train["label"] == "FAKE"]["name"].iloc[0]  # a fake: nothing reuses its boxes
    before = _snapshot(extracted / "faces")
    index.loc[index["name"] == gone, "path"] = str(extracted / "unmounted" / gone)
    cfg = faces_cfg(extracted, detect_every=4)
    with caplog.at_level(logging.WARNING, logger="dfdc.faces.batch"):
        run_faces(index, cfg)
    status = pd.read_parquet(cfg.status_path).set_index("video")
    assert status.loc[gone, "status"] == "unreadable"
    assert (status["status"] == "ok").sum() == len(status) - 1
    after = _snapshot(extracted / "faces")
    changed = [k for k in before if before[k] != after[k]]
    assert len(changed) == 1 and Path(gone).stem in changed[0]
    line = next(r.getMessage() for r in caplog.records if "without crops" in r.getMessage())
    assert f"{gone} (unreadable)" in line and cfg.status_path in line


def test_the_index_names_what_it_could_not_read(tiny_raw, tmp_path, caplog):
    entries = collect_entries(tiny_raw / "train")
    missing = [
        dataclasses.replace(entries[0], name=f"gone{i}.mp4", path=tmp_path / f"gone{i}.mp4")
        for i in range(5)
    ]
    (tmp_path / "empty.mp4").write_bytes(b"")
    empty = dataclasses.replace(entries[0], name="empty.mp4", path=tmp_path / "empty.mp4")
    with caplog.at_level(logging.WARNING, logger="dfdc.dataset.index"):
        index = build_index([*entries, *missing, empty], workers=1,
                            listed_in="data/interim/videos.parquet")  # fmt: skip
    assert (~index["readable"]).sum() == 6
    line = next(r.getMessage() for r in caplog.records if "unreadable or missing" in r.getMessage())
    assert line.startswith(f"6 of {len(entries) + 6} videos unreadable or missing")
    assert "gone0.mp4 (missing file)" in line and "and 3 more" in line
    assert "every one in data/interim/videos.parquet" in line
    assert isinstance(entries[0], VideoEntry)
