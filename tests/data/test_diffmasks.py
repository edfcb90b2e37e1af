"""Difference masks: where a fake crop differs from its original's crop of the same frame."""

import numpy as np
import pandas as pd
import pytest

from dfdc.core.config import ConfigError, DiffMasksConfig, params_from_dict
from dfdc.crops.transforms import FacePartDropout
from dfdc.faces.store import decode_crop, load_video_faces
from dfdc.masks.compute import diff_mask, dissimilarity
from dfdc.masks.store import MaskStore, same_frame_crops
from dfdc.stages.masks import run
from tests.conftest import tiny_params

CFG = DiffMasksConfig(size=32)


def _textured(seed: int = 0, side: int = 128) -> np.ndarray:
    """Smooth texture (blurred noise), like a face crop rather than pure noise."""
    import cv2

    noise = np.random.default_rng(seed).integers(0, 256, (side, side, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 256, 0, 255).astype(np.uint8)


def test_identical_pair_gives_an_empty_mask():
    image = _textured()
    assert dissimilarity(image, image, 1.5).max() == 0
    assert diff_mask(image, image, CFG).max() == 0


def test_pasted_patch_gives_a_mask_on_that_patch_and_nowhere_else():
    real = _textured(0)
    fake = real.copy()
    fake[32:64, 64:96] = _textured(1)[32:64, 64:96]  # a patch of another texture
    mask = diff_mask(real, fake, CFG).astype(np.float32) / 255  # 4 px a cell at 128 -> 32
    patch = np.zeros((32, 32), bool)
    patch[8:16, 16:24] = True
    assert mask[patch].mean() > 0.8
    # Outside the patch grown by SSIM's window (2 cells = 8 px), nothing.
    grown = np.zeros((32, 32), bool)
    grown[6:18, 14:26] = True
    assert mask[~grown].max() == 0


def test_masks_params_out_of_range_name_the_key():
    with pytest.raises(ConfigError, match=r"masks\.threshold"):
        params_from_dict({"masks": {"threshold": 1.5}})
    with pytest.raises(ConfigError, match=r"train\.masks\.weight"):
        params_from_dict({"train": {"masks": {"weight": -1}}})


@pytest.fixture(scope="module")
def tiny_masks(tiny_stage):
    params = tiny_params(tiny_stage)
    return params, run(params)


def test_stage_masks_line_up_with_crops_of_the_same_frame(tiny_masks, tiny_stage):
    params, result = tiny_masks
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    fakes = set(index.loc[index["label"] == "FAKE", "name"]) & set(faces["video"])
    assert set(result.status["video"]) == fakes
    assert len(result.table) and set(result.table["video"]) <= fakes
    # One masked crop, recomputed by hand from the crops of the same frame and track.
    row = result.table.sort_values("area").iloc[-1]
    files = faces.groupby("video")["file"].first()
    fake = load_video_faces(files[row["video"]])
    real = load_video_faces(files[row["original"]])
    i = int(row["crop_index"])
    j = same_frame_crops(fake, real)[i]
    assert (real.frame[j], real.track[j]) == (fake.frame[i], fake.track[i])
    want = diff_mask(decode_crop(real.crops[j]), decode_crop(fake.crops[i]), params.masks)
    store = MaskStore.open(params.masks.table_path)
    assert np.array_equal(np.rint(store.get(row["video"], i) * 255).astype(np.uint8), want)
    assert row["area"] > 0  # the sample's fakes are altered faces
    assert store.get("no-such-video", 0) is None


def test_stage_skips_finished_videos_and_lists_fakes_without_originals(tiny_masks, tiny_stage):
    params, first = tiny_masks
    files = sorted((tiny_stage / "masks").glob("*.npz"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = run(params)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    pd.testing.assert_frame_equal(again.table, first.table)
    # A fake whose original has no crops: listed, no mask.
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    original = index.loc[index["label"] == "FAKE", "original"].iloc[0]
    dropped = tiny_stage / "faces_no_original.parquet"
    faces[faces["video"] != original].to_parquet(dropped)
    alt = params_from_dict(
        {
            "faces": {"table_path": str(dropped)},
            "data": {"index_path": str(tiny_stage / "videos.parquet")},
            "masks": {"out_dir": str(tiny_stage / "masks_b"),
                      "table_path": str(tiny_stage / "masks_b.parquet")},
        }
    )  # fmt: skip
    out = run(alt)
    orphans = out.status[out.status["status"] == "no_original"]
    assert len(orphans) and original not in set(out.table["original"])


def test_missing_masks_table_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the masks stage"):
        MaskStore.open(tmp_path / "masks.parquet")


def test_guided_part_dropout_blanks_the_altered_part():
    image = np.full((128, 128, 3), 200, np.uint8)
    lm = np.array([[40, 50], [88, 50], [64, 70], [46, 92], [82, 92]], np.float32)
    altered = np.zeros((32, 32), np.float32)
    altered[21:25, 10:22] = 1.0  # the mouth region (y 84-100, x 40-88 in crop pixels)
    boxes = FacePartDropout.part_boxes(lm, image.shape)
    drop = FacePartDropout(1.0)
    for seed in range(10):
        out = drop(image, lm, np.random.default_rng(seed), altered)
        x1, y1, x2, y2 = boxes[2]
        assert (out[y1:y2, x1:x2] == 0).all()
    # Unguided, the parts vary.
    blanked = {
        int(np.argmax([(drop(image, lm, np.random.default_rng(s))[y1:y2, x1:x2] == 0).all()
                       for x1, y1, x2, y2 in boxes]))
        for s in range(20)
    }  # fmt: skip
    assert blanked == {0, 1, 2}


def test_masks_picture_shows_original_fake_and_mask(tiny_masks, tiny_stage):
    from dfdc.reports.plots import plot_masks

    _, result = tiny_masks
    fig = plot_masks(result.table, pd.read_parquet(tiny_stage / "faces.parquet"), n=2)
    assert len(fig.axes) == 3 * min(2, result.table["video"].nunique())
    assert [a.get_title() for a in fig.axes[:2]] == ["original", "fake"]
