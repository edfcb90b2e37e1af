"""The real clips in ../shared/data: indexed correctly, explored, and their faces found.

Skipped where ../shared is absent (a user's clone). Files are read in place.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dfdc.core.config import FacesConfig
from dfdc.core.notebooks import run_notebook
from dfdc.core.video import iter_frames
from dfdc.dataset.index import build_index, collect_entries
from dfdc.faces.boxes import iou
from dfdc.faces.detect import Detector
from dfdc.faces.pipeline import extract_video
from tests.conftest import ROOT, write_params

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def dfdc_index(shared_dfdc):
    return build_index(collect_entries(shared_dfdc), workers=2).set_index("name")


def test_real_dfdc_clips_are_indexed_correctly(dfdc_index):
    idx = dfdc_index
    assert len(idx) == 18 and idx["readable"].all()
    assert (idx["label"] == "FAKE").sum() == 17 and idx.loc["lynaeydofd.mp4", "label"] == "REAL"
    assert sorted(idx["part"].unique()) == [
        "dfdc_train_other",
        "dfdc_train_part_0",
        "dfdc_train_part_10",
        "train_sample_videos",
    ]
    # Portrait clips are stored portrait (no rotation flag) and must come out that way.
    assert (idx.loc["brtujopkby.mp4", "width"], idx.loc["brtujopkby.mp4", "height"]) == (1080, 1920)
    assert (idx.loc["yhffcuhhjy.mp4", "width"], idx.loc["yhffcuhhjy.mp4", "height"]) == (720, 1280)
    assert (idx["width"] == 1920).sum() == 16
    assert idx.loc["aqrzuafttg.mp4", "original"] == "msbqgoxxlh.mp4"
    assert idx.loc["adwbthsgqb.mp4", "original"] is None  # a fake whose metadata has no original
    assert idx["has_audio"].all() and (idx["codec"] == "h264").all()
    assert idx["fps"].between(29, 31).all() and idx["frame_count"].between(298, 302).all()


def test_ffpp_method_field_is_kept(shared_dfdc):
    ffpp = shared_dfdc.parent / "ffpp_c23"
    idx = build_index(collect_entries(ffpp), workers=2).set_index("name")
    assert idx.loc["FaceSwap_634_660.mp4", "method"] == "FaceSwap"
    assert idx.loc["FaceSwap_634_660.mp4", "original"] == "634.mp4"
    assert idx.loc["004.mp4", "split"] == "val"


@pytest.mark.parametrize("which", ["dfdc", "metadata"])
def test_eda_runs_on_real_data_and_official_metadata(tmp_path, shared_dfdc, shared_metadata, which):
    root = shared_dfdc if which == "dfdc" else shared_metadata
    index = build_index(collect_entries(root), workers=2)
    index.to_parquet(tmp_path / "videos.parquet")
    params = write_params(tmp_path / "params.yaml", tmp_path)
    out = tmp_path / "eda.ipynb"
    run_notebook(
        ROOT / "notebooks/00_eda.py",
        out,
        {"params_path": str(params), "index_path": str(tmp_path / "videos.parquet"), "smoke": True},
    )
    text = out.read_text()
    assert '"output_type": "error"' not in text
    if which == "metadata":
        assert len(index) == 400 + 1334 + 1699 + 3192
        assert "train_sample_videos" in set(index["part"])
        assert f"{len(index)} unreadable or missing" in text


@pytest.fixture(scope="module")
def full_res_mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


@pytest.mark.parametrize("name", ["aqrzuafttg.mp4", "brtujopkby.mp4", "yhffcuhhjy.mp4"])
def test_boxes_land_on_the_face(dfdc_index, full_res_mtcnn, name):
    """Stage boxes (detected, refined or interpolated) against MTCNN at full resolution."""
    cfg = dataclasses.replace(FacesConfig(), frames=8, detect_every=4)
    vf = extract_video(dfdc_index.loc[name, "path"], cfg, Detector(cfg))
    assert vf.status["status"] == "ok"
    main = vf.track == 0
    w, h = int(dfdc_index.loc[name, "width"]), int(dfdc_index.loc[name, "height"])
    frames = {
        f.index: f.image
        for f in iter_frames(dfdc_index.loc[name, "path"], np.unique(vf.frame[main]))
    }
    assert all(img.shape[:2] == (h, w) for img in frames.values())
    overlaps = []
    for fi, box in zip(vf.frame[main], vf.box[main], strict=True):
        boxes, _ = full_res_mtcnn.detect(frames[int(fi)])
        assert boxes is not None
        overlaps.append(max(iou(box, np.asarray(b, float)) for b in boxes))
    assert len(overlaps) == 8
    assert min(overlaps) > 0.6, overlaps
    assert np.all(vf.box[:, [0, 2]] <= w + 1) and np.all(vf.box[:, [1, 3]] <= h + 1)


def test_real_fake_reuses_its_original_boxes(tmp_path, dfdc_index):
    """No original of these fakes is on disk, so pair a clip with itself under another name:
    the copy must take the first's boxes without running the detector."""
    from dfdc.faces.batch import run_faces
    from tests.conftest import faces_cfg

    src = dfdc_index.loc["abofeumbvv.mp4", "path"]
    index = pd.DataFrame(
        [
            {"name": "orig.mp4", "path": src, "part": "p", "split": "train", "original": None},
            {
                "name": "fake.mp4",
                "path": src,
                "part": "p",
                "split": "train",
                "original": "orig.mp4",
            },
        ]
    )
    cfg = faces_cfg(tmp_path)
    table = run_faces(index, cfg)
    status = pd.read_parquet(cfg.status_path).set_index("video")
    assert bool(status.loc["fake.mp4", "reused_original"]) and not bool(
        status.loc["orig.mp4", "reused_original"]
    )
    a = table[table.video == "orig.mp4"][["frame", "x1", "y1", "x2", "y2"]].to_numpy()
    b = table[table.video == "fake.mp4"][["frame", "x1", "y1", "x2", "y2"]].to_numpy()
    assert len(a) and np.array_equal(a, b), (a[:3], b[:3])
