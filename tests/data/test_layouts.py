"""Datasets in their own layouts: FaceForensics++ and Celeb-DF built here from tiny generated
clips, named and foldered as the real ones; a mixed DFDC + FF++ index; identity-pair folds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dfdc.core.config import CvConfig, params_from_dict
from dfdc.core.video import write_video
from dfdc.dataset.entries import MetadataError
from dfdc.dataset.folds import make_folds
from dfdc.dataset.index import build_index, collect_entries
from dfdc.dataset.layouts import detect_layout
from tests.core.test_video import _ramp

PAIRS = [("033", "097"), ("134", "192"), ("210", "241"), ("252", "266")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, _ramp(6, 48, 64))
    return path


def _put(clip: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, path)


@pytest.fixture(scope="module")
def ffpp(clip, tmp_path_factory) -> Path:
    """Four identity pairs, both directions, two methods, c23 (and one c40 original)."""
    root = tmp_path_factory.mktemp("ffpp") / "FaceForensics++"
    for a, b in PAIRS:
        for t, s in ((a, b), (b, a)):
            _put(clip, root / "original_sequences/youtube/c23/videos" / f"{t}.mp4")
            for method in ("Deepfakes", "FaceSwap"):
                _put(clip, root / f"manipulated_sequences/{method}/c23/videos/{t}_{s}.mp4")
    (root / "splits").mkdir()
    (root / "splits" / "test.json").write_text(json.dumps([list(PAIRS[3])]))
    (root / "splits" / "train.json").write_text(json.dumps([list(p) for p in PAIRS[:3]]))
    return root


def test_ffpp_labels_originals_methods_compression_and_split(ffpp):
    assert detect_layout(ffpp) == "ffpp"
    index = build_index(collect_entries(ffpp), workers=2).set_index("name")
    assert len(index) == 8 + 16 and index["readable"].all()
    assert set(index["dataset"]) == {"ffpp"} and set(index["compression"]) == {"c23"}
    fake = index.loc["Deepfakes_033_097.mp4"]
    assert fake["label"] == "FAKE" and fake["original"] == "033.mp4"
    assert fake["method"] == "Deepfakes" and fake["group"] == "ffpp:033-097"
    assert index.loc["FaceSwap_097_033.mp4", "group"] == "ffpp:033-097"
    real = index.loc["097.mp4"]
    assert real["label"] == "REAL" and pd.isna(real["original"])
    assert real["method"] == "original_youtube"
    # The official split lists: the pair 252/266 is test, its videos never train.
    assert set(index.loc[index["split"] == "test"].index) == {
        "252.mp4", "266.mp4", "Deepfakes_252_266.mp4", "Deepfakes_266_252.mp4",
        "FaceSwap_252_266.mp4", "FaceSwap_266_252.mp4",
    }  # fmt: skip


def test_ffpp_folds_keep_identity_pairs_together(ffpp):
    index = build_index(collect_entries(ffpp), workers=2)
    folds = make_folds(index, CvConfig(n_folds=3)).set_index("name")
    assert len(folds) == 18  # the test pair is left out
    for a, b in PAIRS[:3]:
        members = [f"{a}.mp4", f"{b}.mp4", f"Deepfakes_{a}_{b}.mp4", f"FaceSwap_{b}_{a}.mp4"]
        assert folds.loc[members, "fold"].nunique() == 1, (a, b)
    assert folds["fold"].nunique() == 3


def test_several_compressions_get_distinct_names(ffpp, clip, tmp_path):
    root = tmp_path / "ff"
    shutil.copytree(ffpp, root)
    _put(clip, root / "original_sequences/youtube/c40/videos/033.mp4")
    names = {e.name for e in collect_entries(root)}
    assert {"033.c23.mp4", "033.c40.mp4", "Deepfakes_033_097.c23.mp4"} <= names


def test_celebdf_layout_and_test_list(clip, tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    for rel in (
        "Celeb-real/id0_0000.mp4", "Celeb-real/id1_0003.mp4", "YouTube-real/00170.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0003.mp4",
    ):  # fmt: skip
        _put(clip, root / rel)
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id1_id0_0003.mp4\n"
    )
    assert detect_layout(root) == "celebdf"
    index = build_index(collect_entries(root), workers=2).set_index("name")
    assert index.loc["id0_id1_0000.mp4", "original"] == "id0_0000.mp4"
    assert index.loc["id0_id1_0000.mp4", "label"] == "FAKE"
    assert index.loc["00170.mp4", "label"] == "REAL"
    assert set(index.index[index["split"] == "test"]) == {"00170.mp4", "id1_id0_0003.mp4"}
    assert index.loc["id0_0000.mp4", "group"] == index.loc["id0_id1_0000.mp4", "group"]


def test_mixed_dfdc_and_ffpp_index_and_folds(tiny_raw, ffpp):
    index = build_index(collect_entries(tiny_raw / "train", extra_roots=(ffpp,)), workers=2)
    assert set(index["dataset"]) == {"dfdc", "ffpp"}
    assert index.loc[index["dataset"] == "dfdc", "compression"].isna().all()
    folds = make_folds(index, CvConfig(n_folds=2, group_by="part"))
    # DFDC by part, FF++ by identity pairs: neither crosses folds.
    by = folds.set_index("name")
    for part, g in by[by.index.isin(index.loc[index["dataset"] == "dfdc", "name"])].groupby("part"):
        assert g["fold"].nunique() == 1, part
    assert by.loc[["033.mp4", "097.mp4", "Deepfakes_097_033.mp4"], "fold"].nunique() == 1


def test_a_folder_in_no_layout_and_a_symlinked_dataset(ffpp, tmp_path):
    (tmp_path / "random" / "stuff").mkdir(parents=True)
    (tmp_path / "random" / "stuff" / "clip.mp4").write_bytes(b"")
    with pytest.raises(MetadataError, match=r"no known dataset layout .*FaceForensics\+\+"):
        collect_entries(tmp_path / "random")
    # A dataset on another disk linked into place: every level may be a link.
    linked = tmp_path / "data"
    (linked / "manipulated_sequences").mkdir(parents=True)
    (linked / "original_sequences").symlink_to(ffpp / "original_sequences")
    (linked / "manipulated_sequences" / "Deepfakes").symlink_to(
        ffpp / "manipulated_sequences" / "Deepfakes"
    )
    names = {e.name for e in collect_entries(linked)}
    assert "033.mp4" in names and "Deepfakes_033_097.mp4" in names
    assert not any(n.startswith("FaceSwap") for n in names)


def test_the_source_contract_reads_an_ffpp_root(ffpp, tmp_path):
    """dvc exp run -S data.source=ffpp -S data.local_path=PATH: the data stage indexes it."""
    from dfdc.stages.data import run

    params = params_from_dict(
        {
            "data": {
                "source": "ffpp",
                "local_path": str(ffpp),
                "raw_dir": str(tmp_path / "raw"),
                "index_path": str(tmp_path / "videos.parquet"),
                "workers": 1,
            }
        }
    )
    index = run(params).index
    assert len(index) == 24 and set(index["dataset"]) == {"ffpp"}
    assert json.loads((tmp_path / "raw" / "SOURCE.json").read_text())["source"] == "ffpp"
