"""The compress stage's copies: re-encoded crops that stay pixel-aligned with the crops they
copy, made once and resumed, one broken video recorded and the rest made; training draws them,
validation scores them out of fold, and the ensemble's calibration sees them."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdc.core.config import CompressConfig
from dfdc.faces.copies import (
    CopyLevel,
    copy_crops,
    copy_levels,
    copy_tables,
    copy_video,
    made_from,
    run_copies,
)
from dfdc.faces.store import decode_crop, load_video_faces
from tests.conftest import tiny_params, tiny_sequence_run


def _diff(a: bytes, b: bytes) -> float:
    return float(np.abs(decode_crop(a).astype(np.int16) - decode_crop(b).astype(np.int16)).mean())


@pytest.fixture(scope="module")
def copies(tiny_stage, tmp_path_factory):
    """Every level's copy of the tiny sample's videos, in a folder of their own."""
    out = tmp_path_factory.mktemp("copies")
    cfg = CompressConfig(
        train_crf=(45,), train_downscale=(0.5,), downscale_crf=18, validate_crf=(18,),
        out_dir=str(out / "compressed"), table_path=str(out / "compressed.parquet"),
    )  # fmt: skip
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    table = run_copies(index, faces, cfg, crop_size=224)
    return cfg, index, faces, table


def test_levels_are_named_and_split_into_training_and_validation():
    cfg = CompressConfig(train_crf=(28, 38), train_downscale=(0.5,), downscale_crf=30,
                         validate_crf=(38,))  # fmt: skip
    assert [lv.name for lv in copy_levels(cfg, "train")] == ["crf28", "crf38", "x0.5_crf30"]
    assert [lv.name for lv in copy_levels(cfg, "validate")] == ["crf38"]
    assert [lv.name for lv in copy_levels(cfg)] == ["crf28", "crf38", "x0.5_crf30"]


def test_a_copy_has_the_crops_of_its_original_frame_for_frame(copies):
    _, _, faces, table = copies
    assert (table["status"] == "ok").all() and len(table) == 3 * faces["video"].nunique()
    for video, rows in table.groupby("video"):
        source = load_video_faces(rows["source"].iloc[0])
        near, heavy, small = (load_video_faces(f) for f in rows.sort_values("level")["file"])
        for copy in (near, heavy, small):
            assert np.array_equal(copy.frame, source.frame)
            assert np.array_equal(copy.crop_box, source.crop_box)
            assert len(copy.crops) == len(source.crops)
        # CRF 18 is close to the crop; CRF 45 is far from it; a copy is aligned: closer to its
        # own crop than to the next crop of the same track.
        d18 = np.mean([_diff(a, b) for a, b in zip(source.crops, near.crops, strict=True)])
        d45 = np.mean([_diff(a, b) for a, b in zip(source.crops, heavy.crops, strict=True)])
        assert d18 < 6 < d45, (video, d18, d45)
        other = np.mean([_diff(a, b) for a, b in zip(source.crops[1:], near.crops, strict=False)])
        assert d18 < other


def test_copies_resume_and_a_broken_video_is_recorded(copies, tmp_path):
    cfg, index, faces, table = copies
    files = [Path(f) for f in table["file"]]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = run_copies(index, faces, cfg, crop_size=224)
    assert again.equals(table)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing made twice
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    bad = index.copy()
    bad.loc[0, "path"] = str(broken)
    out = dataclasses.replace(cfg, out_dir=str(tmp_path / "c"), table_path=str(tmp_path / "t.pq"))
    result = run_copies(bad, faces, out, crop_size=224)
    failed = result[result["status"] == "failed"]
    assert set(failed["video"]) == {index.loc[0, "name"]} and failed["reason"].str.len().gt(0).all()
    assert (result[result["video"] != index.loc[0, "name"]]["status"] == "ok").all()
    assert set(failed["level"]) == {"crf45", "crf18", "x0.5_crf18"}  # all from the video
    # From the crops, only the level made from the video is lost.
    crops = dataclasses.replace(out, source="crops", out_dir=str(tmp_path / "k"))
    result = run_copies(bad, faces, crops, crop_size=224)
    failed = result[result["status"] == "failed"]
    assert set(failed["video"]) == {index.loc[0, "name"]} and set(failed["level"]) == {"crf18"}


def test_training_levels_come_from_the_crops_and_validation_levels_from_the_video():
    cfg = CompressConfig(train_crf=(28, 38), train_downscale=(0.5,), validate_crf=(38,))
    assert set(made_from(cfg).values()) == {"video"}  # the default
    crops = dataclasses.replace(cfg, source="crops")
    assert {lv.name: src for lv, src in made_from(crops).items()} == {
        "crf28": "crops", "crf38": "video", "x0.5_crf28": "crops"
    }  # fmt: skip


def test_a_copy_from_the_crops_is_aligned_and_as_heavy_as_its_level(tiny_stage):
    """No video is read: the crops are re-encoded at their size in the frame and come back at
    the crop's size, row for row; CRF 18 stays close to the crop, CRF 45 does not, a downscale
    blurs, and each copy is closer to its own crop than to its track's next one."""
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    vf = load_video_faces(faces["file"].iloc[0])
    out = copy_crops(vf, [CopyLevel(18), CopyLevel(45), CopyLevel(18, 0.5)], "jpg", 95)
    near, heavy, small = out["crf18"], out["crf45"], out["x0.5_crf18"]
    for copy in (near, heavy, small):
        assert np.array_equal(copy.frame, vf.frame) and np.array_equal(copy.track, vf.track)
        assert len(copy.crops) == len(vf.crops)
        assert decode_crop(copy.crops[0]).shape == decode_crop(vf.crops[0]).shape
        assert copy.status["made_from"] == "crops" and copy.status["copy_bytes"] > 0
    d18, d45, dsmall = (
        np.mean([_diff(a, b) for a, b in zip(vf.crops, c.crops, strict=True)])
        for c in (near, heavy, small)
    )  # fmt: skip
    assert d18 < 6 < d45 and d18 < dsmall, (d18, d45, dsmall)
    same_track = vf.track[1:] == vf.track[:-1]
    own = [_diff(a, b) for a, b, s in zip(vf.crops, near.crops, same_track, strict=False) if s]
    nxt = [_diff(a, b) for a, b, s in zip(vf.crops[1:], near.crops, same_track, strict=False) if s]
    assert np.mean(own) < np.mean(nxt)


def test_changing_the_source_remakes_the_training_levels_only(copies, tmp_path):
    cfg, index, faces, _ = copies
    out = dataclasses.replace(cfg, out_dir=str(tmp_path / "c"), table_path=str(tmp_path / "t.pq"))
    table = run_copies(index.head(1), faces, out, crop_size=224)
    stamps = {r.level: Path(r.file).stat().st_mtime_ns for r in table.itertuples()}
    again = run_copies(index.head(1), faces, dataclasses.replace(out, source="crops"), 224)
    for r in again.itertuples():
        remade = Path(r.file).stat().st_mtime_ns != stamps[r.level]
        assert remade == (r.level != "crf18"), r.level  # crf18: the validation level
        made = load_video_faces(r.file).status["made_from"]
        assert made == ("video" if r.level == "crf18" else "crops"), r.level


def test_copy_tables_keep_the_rows_and_point_at_the_copies(copies):
    _, _, faces, table = copies
    tables = copy_tables(faces, table)
    assert set(tables) == {"crf18", "crf45", "x0.5_crf18"}
    t = tables["crf45"]
    assert len(t) == len(faces) and (t["source_file"].to_numpy() == faces["file"].to_numpy()).all()
    assert t["file"].str.contains("crf45").all()


def test_a_video_that_cannot_be_decoded_to_its_crops_is_one_error(tiny_stage, tmp_path):
    from dfdc.core.video import VideoError

    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    vf = load_video_faces(faces["file"].iloc[0])
    broken = tmp_path / "x.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError):
        copy_video(broken, vf, [CopyLevel(30)], 224, "jpg", 95)


def test_training_draws_copies_and_validation_scores_them(copies, tiny_stage, tmp_path):
    """train.compress.p 1: every training crop comes from a copy (pairs: both from one level);
    each fold writes the validation copies' out-of-fold table, which the ensemble fit reads
    as videos of their own, reported apart."""
    from dfdc.crops.datasets import CropDataset, crop_items
    from dfdc.inference.fit import cv_metrics, fit_ensemble, load_oof
    from dfdc.training.loop import fit

    cfg, index, faces, table = copies
    shutil.copytree(tiny_stage, tmp_path / "stage", dirs_exist_ok=True)
    params = tiny_params(tmp_path / "stage", run="squeezed", epochs=1, compress={"p": 1.0})
    params = dataclasses.replace(params, compress=cfg)
    # The dataset: with p 1 a crop is its copy's, never the original's.
    labels = dict(zip(index["name"], index["label"], strict=True))
    items = crop_items(faces, labels, None)[:4]
    level = copy_tables(faces, table)["crf45"].drop_duplicates("video")
    mapping = dict(zip(level["source_file"], level["file"], strict=True))
    ds = CropDataset(items, lambda image: {"image": image}, copies=[mapping], copy_p=1.0)
    plain = CropDataset(items, lambda image: {"image": image})
    for i, it in enumerate(items):
        copy = load_video_faces(mapping[it.file]).crops[it.crop_index]
        assert np.array_equal(ds._image(it, ds._copy(it))[0], decode_crop(copy))
        assert not np.array_equal(ds[i][0], plain[i][0])

    for k in (0, 1):
        result = fit(params, k, max_batches=1)
        assert (result.out_dir / "oof_crf18.parquet").exists()
        assert "crf18_video_logloss" in result.best
    oof = load_oof(params.base.models_dir, ("squeezed",), copies=True)
    assert set(oof["copy"]) == {"", "crf18"}
    assert oof[oof["copy"] == "crf18"]["video"].str.endswith("@crf18").all()
    report = fit_ensemble(oof, dataclasses.replace(params.ensemble, runs=("squeezed",)))
    metrics = cv_metrics(report, index)
    assert metrics["n_videos"] == (oof["copy"] == "").sum()
    assert metrics["copies"]["crf18"]["n"] == (oof["copy"] == "crf18").sum()
    assert any("crf18 copies" in r for r in report.table["ensemble"])


def test_the_sample_gets_no_copies_and_real_data_does(tiny_stage, tmp_path):
    """compress.when auto: make repro on the sample is not slowed by re-encodes; a real data
    source gets every level."""
    from dfdc.core.config import params_from_dict, redirect_outputs
    from dfdc.stages.compress import run

    shutil.copytree(tiny_stage, tmp_path / "s", dirs_exist_ok=True)
    raw = redirect_outputs({"compress": {"train_crf": [40], "train_downscale": []}}, tmp_path / "s")
    sample = params_from_dict(raw)
    assert run(sample).empty
    assert (Path(sample.compress.out_dir) / "levels.json").exists()
    raw["data"]["source"] = "ffpp"
    real = params_from_dict(raw)
    table = run(real)
    assert set(table["level"]) == {"crf40", "crf38"} and (table["status"] == "ok").all()


def test_robustness_videos_auto_follows_the_data_source():
    from dfdc.core.config import params_from_dict
    from dfdc.stages.robustness import AUTO_VIDEOS, resolved

    assert resolved(params_from_dict({})).videos == AUTO_VIDEOS["sample"] == 2
    real = params_from_dict({"data": {"source": "ffpp"}})
    assert resolved(real).videos == AUTO_VIDEOS["real"] > 2
    fixed = params_from_dict({"data": {"source": "ffpp"}, "robustness": {"videos": 0}})
    assert resolved(fixed).videos == 0


def test_copies_made_in_this_process_leave_its_opencv_threads_alone(copies, tmp_path):
    """Made in the calling process (workers 1), the copies must not leave it on one OpenCV
    thread: a benchmark trains right after them."""
    import cv2

    cfg, index, faces, _ = copies
    out = dataclasses.replace(cfg, out_dir=str(tmp_path / "c"), table_path=str(tmp_path / "t.pq"))
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)
        table = run_copies(index.head(1), faces, out, crop_size=224)
        assert (table["status"] == "ok").all() and len(table)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_a_sequence_run_trains_on_the_copies_embeddings(copies, tiny_stage, tmp_path):
    """sequence compress.p: a training track is read from a copy level's embeddings, which are
    the embeddings of that copy's crops for the training videos and the originals' elsewhere
    (validation never reads them); the fold trains and still scores the validation copies."""
    from dfdc.core.config import CompressTrainConfig
    from dfdc.core.runtime import make_runtime
    from dfdc.kinds.embeddings import copy_embeddings, fold_embeddings
    from dfdc.kinds.tracks import TrackDataset, track_items
    from dfdc.training.loop import _context, fit

    cfg, *_ = copies
    shutil.copytree(tiny_stage, tmp_path / "stage", dirs_exist_ok=True)
    params = tiny_params(tmp_path / "stage", run="frames", epochs=1)
    params = dataclasses.replace(params, compress=cfg)
    fit(params, 0, max_batches=1)
    seq = tiny_sequence_run(
        "frames", tmp_path / "emb", compress=CompressTrainConfig(p=1.0, levels=("crf45",))
    )
    ctx, _, _ = _context(params, seq, 0, make_runtime("cpu"))
    assert set(ctx.train_copies) == {"crf45"}
    labelled = set(ctx.train_labels) | set(ctx.val_labels)
    faces = ctx.crops[ctx.crops["video"].isin(labelled)].reset_index(drop=True)
    clean, _ = fold_embeddings(seq, 0, faces, ctx.faces, ctx.models_dir, ctx.seed)
    level = copy_embeddings(ctx, faces, "crf45", clean)
    train = faces["video"].isin(ctx.train_labels).to_numpy()
    assert train.any() and (~train).any()
    assert np.array_equal(level[~train], clean[~train])
    # CRF 45 changes every training crop's embedding.
    assert (np.abs(level[train].astype(np.float32) - clean[train]).max(axis=1) > 0).all()
    cache = tmp_path / "emb" / "frames"  # under the embedder (the frame run), not the head
    assert len(list(cache.glob("fold0+crf45-*.npy"))) == 1

    items = track_items(faces, ctx.train_labels, None)
    drawn = TrackDataset(items, clean, copies=[level], copy_p=1.0)
    for i, it in enumerate(items):
        assert np.array_equal(drawn[i][0].numpy(), level[list(it.rows)].astype(np.float32))

    result = fit(params, 0, run=seq, max_batches=1)
    assert "crf18_video_logloss" in result.best
    assert len(list(cache.glob("fold0+crf45-*.npy"))) == 1  # the cache, reused


@pytest.mark.shared
def test_a_region_copy_degrades_a_real_clip_s_crops_as_the_whole_frame_copy_does():
    """Encoding the region around the crops instead of the whole frame (``pad``) leaves what
    the compression does to a crop as it was (its mean distance from the crop within 10 % of
    the whole-frame copy's; two encodes' quantisation noise is independent, so the copies
    themselves differ about as much as each differs from the crop), and encodes fewer pixels (under
    half at full size): a 480p FaceForensics++ clip, at a c40-like level and a downscaled one."""
    from dfdc.core.config import FacesConfig
    from dfdc.faces.detect import Detector
    from dfdc.faces.pipeline import extract_video
    from tests.conftest import SHARED

    clip = SHARED / "ffpp" / "original_sequences" / "youtube" / "c23" / "videos" / "035.mp4"
    cfg = FacesConfig(frames=8)
    vf = extract_video(clip, cfg, Detector(cfg, "cpu"))
    assert vf.status["status"] == "ok" and len(vf.crops) >= 8
    levels = [CopyLevel(38), CopyLevel(28, 0.5)]
    whole = copy_video(clip, vf, levels, 224, "jpg", 95, pad=-1)
    region = copy_video(clip, vf, levels, 224, "jpg", 95, pad=32)
    for level in levels:
        w, r = whole[level.name], region[level.name]
        assert np.array_equal(r.frame, vf.frame) and np.array_equal(r.crop_box, vf.crop_box)
        d_whole = np.mean([_diff(a, b) for a, b in zip(vf.crops, w.crops, strict=True)])
        d_region = np.mean([_diff(a, b) for a, b in zip(vf.crops, r.crops, strict=True)])
        (rw, rh), (ww, wh) = r.status["region"], w.status["region"]
        print(f"{level.name}: from the crop {d_whole:.2f} whole, {d_region:.2f} region; "
              f"{rw * rh / (ww * wh):.2f} of the pixels")  # fmt: skip
        assert abs(d_region - d_whole) < 0.1 * d_whole, (level.name, d_region, d_whole)
        assert rw * rh < (0.5 if level.scale == 1 else 1.0) * ww * wh


def test_every_crop_of_a_frame_lies_inside_its_region():
    """Two faces far apart in one frame, one at the frame's edge, one crop a frame elsewhere:
    the region holds every frame's crops whole, on the 16 px grid where that cuts none, and
    never leaves the frame; pad -1 is the whole frame."""
    from dfdc.faces.copies import crop_regions

    size = (640, 480)
    frames = np.array([3, 3, 9, 20])
    boxes = np.array([[10, 40, 130, 160], [480, 300, 639, 459], [200, 100, 330, 230],
                      [0, 350, 128, 478]], dtype=np.float64)  # fmt: skip
    for pad in (0, 5, 32):
        region, corners = crop_regions(frames, boxes, pad, size)
        assert region[0] <= 640 and region[1] <= 480 and all(r % 2 == 0 for r in region)
        for f, (x0, y0) in corners.items():
            assert 0 <= x0 <= 640 - region[0] and 0 <= y0 <= 480 - region[1]
            for b in boxes[frames == f]:
                assert x0 <= b[0] and b[2] <= x0 + region[0], (pad, f, b, x0, region)
                assert y0 <= b[1] and b[3] <= y0 + region[1], (pad, f, b, y0, region)
        one = crop_regions(frames[2:3], boxes[2:3], pad, size)
        assert one[0][0] % 16 == 0 and all(c % 16 == 0 for c in one[1][9])
    assert crop_regions(frames, boxes, -1, size) == ((640, 480), {3: (0, 0), 9: (0, 0), 20: (0, 0)})
