import dataclasses
import os
import time

import numpy as np
import pandas as pd
import pytest

from dfdc.core.video import iter_frames, write_video
from dfdc.dataset.index import build_index, collect_entries
from dfdc.dataset.sample.photos import load_photos
from dfdc.dataset.sample.scene import Actor, Scene
from dfdc.faces.batch import run_faces
from dfdc.faces.boxes import iou
from dfdc.faces.detect import Detection, Detector
from dfdc.faces.frames import crop_square, decode_sampled
from dfdc.faces.pipeline import extract_video, faces_params_hash
from dfdc.faces.store import decode_crop, load_video_faces
from dfdc.faces.track import build_tracks
from tests.conftest import faces_cfg


def test_crop_square_has_margin_and_stays_inside():
    sq = crop_square([100, 100, 200, 180], 0.3, 1920, 1080)
    assert sq[2] - sq[0] == pytest.approx(160) and sq[3] - sq[1] == pytest.approx(160)
    assert (sq[0] + sq[2]) / 2 == pytest.approx(150)
    edge = crop_square([0, 0, 100, 100], 0.3, 640, 360)
    assert edge[0] == 0 and edge[1] == 0 and edge[2] == pytest.approx(160)
    huge = crop_square([0, 0, 600, 400], 0.3, 640, 360)
    assert huge[3] - huge[1] == pytest.approx(360) and huge[3] <= 360


def test_yuv_crop_matches_ffmpeg_rgb(tiny_raw):
    path = next((tiny_raw / "train").rglob("*.mp4"))
    (sampled,) = decode_sampled(path, [5], set(), 640)
    (rgb,) = list(iter_frames(path, [5]))
    box = np.array([100, 40, 260, 200], np.float32)
    ours = sampled.crop(box, 64).astype(float)
    ref = rgb.image[40:200, 100:260]
    import cv2

    ref = cv2.resize(ref, (64, 64), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(ours - ref).mean() < 3.0


def _det(x, y, s=50, p=0.99):
    box = np.array([x, y, x + s, y + s], np.float32)
    return Detection(box, p, np.tile(np.array([x + s / 2, y + s / 2], np.float32), (5, 1)))


def test_track_survives_a_missed_detection_and_is_interpolated():
    runs = {
        0: [_det(100, 100)],
        4: [_det(110, 100)],
        8: [],
        12: [_det(130, 100)],
        15: [_det(140, 100)],
    }
    (track,) = build_tracks(runs, n_positions=16, max_gap=2, carry=3)
    assert sorted(track.boxes) == list(range(16))
    assert not track.boxes[8].detected
    assert track.boxes[8].box[0] == pytest.approx(
        120
    )  # halfway between 110 (pos 4) and 130 (pos 12)


def test_short_tracks_dropped_and_several_faces_kept():
    runs = {p: [_det(100 + p, 100), _det(400, 120, s=40)] for p in range(0, 16, 4)}
    runs[4].append(_det(700, 300, s=30))  # a one-off false positive
    tracks = build_tracks(runs, n_positions=16, min_fraction=0.5, max_tracks=3)
    assert len(tracks) == 2
    assert tracks[0].hits[0].box[0] == 100  # the bigger face first
    (only,) = build_tracks(runs, n_positions=16, min_fraction=0.5, max_tracks=1)
    assert only.hits[0].box[0] == 100


def _scene_video(path, actors, dim=1.0, frames=24):
    scene = Scene(tuple(actors), 640, 360, seed=3)
    write_video(
        path,
        (
            np.clip(scene.finish(scene.render_clean(t), t) * dim, 0, 255).astype(np.uint8)
            for t in range(frames)
        ),
    )
    return scene


@pytest.fixture(scope="module")
def detector_cfg(tmp_path_factory):
    cfg = faces_cfg(tmp_path_factory.mktemp("faces"))
    return cfg, Detector(cfg)


def test_two_people_give_two_tracks(tmp_path, detector_cfg):
    cfg, det = detector_cfg
    hopper, collins = load_photos()
    scene = _scene_video(
        tmp_path / "two.mp4",
        [
            Actor(hopper, anchor=(0.28, 0.45), face_frac=0.3),
            Actor(collins, anchor=(0.74, 0.45), face_frac=0.3),
        ],
    )
    vf = extract_video(tmp_path / "two.mp4", cfg, det)
    assert vf.status["status"] == "ok" and vf.status["tracks"] == 2
    truth = scene.boxes(0)
    first = {int(t): vf.box[(vf.track == t) & (vf.frame == 0)][0] for t in np.unique(vf.track)}
    # Each true face is covered by one track's box on frame 0.
    for box in truth:
        assert max(iou(box, b) for b in first.values()) > 0.4


def test_dark_video_still_yields_a_track(tmp_path, detector_cfg):
    cfg, det = detector_cfg
    (hopper, _) = load_photos()
    _scene_video(tmp_path / "dark.mp4", [Actor(hopper)], dim=0.18)
    vf = extract_video(tmp_path / "dark.mp4", cfg, det)
    assert vf.status["status"] == "ok"
    assert vf.status["frames_with_face"] >= 6


def test_no_face_is_recorded(tmp_path, detector_cfg):
    cfg, det = detector_cfg
    rng = np.random.default_rng(0)
    write_video(
        tmp_path / "noise.mp4",
        (rng.integers(0, 255, (180, 320, 3), dtype=np.uint8) for _ in range(10)),
    )
    vf = extract_video(tmp_path / "noise.mp4", cfg, det)
    assert vf.status["status"] == "no_face" and vf.status["frames_tried"] == 8
    assert len(vf.crops) == 0


@pytest.fixture
def tiny_index(tiny_raw):
    return build_index(collect_entries(tiny_raw / "train"), workers=1)


def test_stage_on_sample_reuses_original_boxes(tmp_path, tiny_index):
    cfg = faces_cfg(tmp_path)
    table = run_faces(tiny_index, cfg)
    status = pd.read_parquet(cfg.status_path).set_index("video")
    assert (status["status"] == "ok").all()
    fakes = tiny_index[tiny_index["label"] == "FAKE"]
    assert status.loc[fakes["name"], "reused_original"].all()
    for f in fakes.itertuples():
        mine = table[table["video"] == f.name][["frame", "x1", "y1", "x2", "y2"]].to_numpy()
        theirs = table[table["video"] == f.original][["frame", "x1", "y1", "x2", "y2"]].to_numpy()
        assert np.array_equal(mine, theirs)
    crop = decode_crop(load_video_faces(table["file"].iloc[0]).crops[0])
    assert crop.shape == (cfg.crop_size, cfg.crop_size, 3)
    assert {"video", "frame", "track", "x1", "prob", "lm4_y", "file", "crop_index"} <= set(
        table.columns
    )

    no_reuse = dataclasses.replace(cfg, reuse_original_boxes=False, out_dir=str(tmp_path / "f2"))
    run_faces(tiny_index, no_reuse)
    status2 = pd.read_parquet(no_reuse.status_path).set_index("video")
    assert not status2["reused_original"].any()


def test_corrupt_videos_are_recorded_and_the_run_continues(tmp_path, tiny_index):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "junk.mp4").write_bytes(b"\x00\x01garbage" * 1000)
    good = tiny_index.iloc[:1]
    extra = pd.DataFrame(
        [
            {
                "name": "junk.mp4",
                "path": str(bad / "junk.mp4"),
                "part": "p",
                "split": "train",
                "original": None,
            },
            {
                "name": "gone.mp4",
                "path": str(bad / "gone.mp4"),
                "part": "p",
                "split": "train",
                "original": None,
            },
        ]
    )
    index = pd.concat([extra, good], ignore_index=True)
    cfg = faces_cfg(tmp_path)
    run_faces(index, cfg)
    status = pd.read_parquet(cfg.status_path).set_index("video")
    assert (
        status.loc["junk.mp4", "status"] == "unreadable"
        and "not a readable video" in status.loc["junk.mp4", "reason"]
    )
    assert (
        status.loc["gone.mp4", "status"] == "unreadable"
        and "not found" in status.loc["gone.mp4", "reason"]
    )
    assert status.loc[good["name"].iloc[0], "status"] == "ok"


def test_unexpected_error_in_one_video_does_not_stop_the_run(tmp_path, tiny_index, monkeypatch):
    import dfdc.faces.batch as ex

    real = ex.extract_video
    victim = tiny_index["name"].iloc[0]

    def flaky(path, *a, **k):
        if os.path.basename(str(path)) == victim:
            raise RuntimeError("boom")
        return real(path, *a, **k)

    monkeypatch.setattr(ex, "extract_video", flaky)
    cfg = faces_cfg(tmp_path, reuse_original_boxes=False)
    run_faces(tiny_index, cfg)
    status = pd.read_parquet(cfg.status_path).set_index("video")
    assert status.loc[victim, "status"] == "error" and "boom" in status.loc[victim, "reason"]
    assert (status.drop(victim)["status"] == "ok").all()


def test_rerun_resumes_without_redoing_finished_videos(tmp_path, tiny_index):
    cfg = faces_cfg(tmp_path)
    run_faces(tiny_index, cfg)
    files = sorted((tmp_path / "faces").rglob("*.npz"))
    assert len(files) == len(tiny_index)
    before = {f: f.stat().st_mtime_ns for f in files}
    first = files[0].read_bytes()
    # An interrupted run: one video never finished, one left a broken file behind.
    files[0].unlink()
    files[1].write_bytes(b"partial")
    # A video that left the index (the source changed): its file must not linger in the output.
    stale = tmp_path / "faces" / "old_part" / "gone.npz"
    stale.parent.mkdir()
    stale.write_bytes(b"x")
    time.sleep(0.01)
    timing: dict = {}
    run_faces(tiny_index, cfg, timing=timing)
    after = {f: f.stat().st_mtime_ns for f in files}
    redone = {f for f in files if after[f] != before[f]}
    assert redone == {files[0], files[1]}
    assert not stale.exists()
    key = load_video_faces(files[1], crops=False).params_hash
    assert key.startswith(faces_params_hash(cfg) + ":")
    # Face files are DVC outputs: the same crops must be the same bytes, or every stage after
    # the faces reruns after a rebuild. The time a video took is in the status table only,
    # carried over from the last table for the videos a rerun keeps.
    assert files[0].read_bytes() == first
    status = pd.read_parquet(cfg.status_path)
    assert status["seconds"].notna().all() and (status["seconds"] > 0).all()
    assert "seconds" not in load_video_faces(files[2], crops=False).status
    # Changing a param that alters the crops redoes everything.
    bigger = dataclasses.replace(cfg, crop_size=96)
    run_faces(tiny_index, bigger)
    assert all(f.stat().st_mtime_ns != after[f] for f in files)


def test_a_replaced_video_under_the_same_name_is_extracted_again(tmp_path, tiny_index):
    """A regenerated sample (other frames, same file names) must not keep the old crops."""
    import shutil
    from pathlib import Path

    videos = tmp_path / "videos"
    index = tiny_index.copy()
    paths = []
    for p in index["path"]:
        dst = videos / Path(p).parent.name / Path(p).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
        paths.append(str(dst))
    index["path"] = paths
    cfg = faces_cfg(tmp_path, reuse_original_boxes=False)
    run_faces(index, cfg)
    files = {Path(f).stem: f for f in (tmp_path / "faces").rglob("*.npz")}
    before = {k: f.stat().st_mtime_ns for k, f in files.items()}
    # Another video's bytes under the first one's name.
    first, other = Path(paths[0]), Path(paths[1])
    shutil.copy(other, first)
    time.sleep(0.01)
    run_faces(index, cfg)
    redone = {k for k, f in files.items() if f.stat().st_mtime_ns != before[k]}
    assert redone == {first.stem}


def test_the_calling_process_keeps_its_thread_counts(tmp_path, tiny_index):
    """A benchmark extracts faces and then trains in the same process: the extraction must not
    leave that process on fewer threads (a pool worker's one-thread setting, applied in the
    caller when nothing was left to extract, once made it train on one of two cores)."""
    import cv2
    import torch

    cfg = faces_cfg(tmp_path, workers=2)
    run_faces(tiny_index, cfg)  # the pool
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        torch.set_num_threads(3)
        cv2.setNumThreads(3)
        run_faces(tiny_index, cfg)  # nothing left to do
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (3, 3)
        sorted((tmp_path / "faces").rglob("*.npz"))[0].unlink()
        run_faces(tiny_index, cfg)  # one video, extracted in this process
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (3, 3)
        assert len(list((tmp_path / "faces").rglob("*.npz"))) == len(tiny_index)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
