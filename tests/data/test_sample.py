import json
import re

import numpy as np
import pytest

from dfdc.core.video import read_frames
from dfdc.dataset.sample.build import plan_sample, render_video
from tests.conftest import TINY_SAMPLE


def test_plan_is_deterministic_and_dfdc_shaped():
    plans = plan_sample(TINY_SAMPLE)
    assert plans == plan_sample(TINY_SAMPLE)
    names = [p.name for p in plans]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z]{10}\.mp4", n) for n in names)
    by_name = {p.name: p for p in plans}
    for p in plans:
        if p.label == "FAKE" and p.split == "train":
            # A fake lives in its original's part, so folds by part never split them.
            assert by_name[p.original].folder == p.folder
            assert by_name[p.original].label == "REAL"
    assert {p.method for p in plans if p.label == "FAKE"} == {"faceswap", "selfblend"}


def test_layout_and_metadata(tiny_raw):
    parts = sorted(p.name for p in (tiny_raw / "train").iterdir())
    assert parts == ["dfdc_train_part_0", "dfdc_train_part_1"]
    for part in parts:
        meta = json.loads((tiny_raw / "train" / part / "metadata.json").read_text())
        assert len(meta) == 3
        for name, entry in meta.items():
            assert (tiny_raw / "train" / part / name).exists()
            assert entry["label"] in ("REAL", "FAKE") and entry["split"] == "train"
            if entry["label"] == "FAKE":
                assert entry["original"] in meta
    sub = (tiny_raw / "sample_submission.csv").read_text().splitlines()
    assert sub[0] == "filename,label" and len(sub) == 3
    assert sorted(p.name for p in (tiny_raw / "test_videos").iterdir()) == sorted(
        r.split(",")[0] for r in sub[1:]
    )


@pytest.fixture(scope="module")
def detector():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


def test_faces_are_detectable_by_mtcnn(tiny_raw, detector):
    for path in sorted(tiny_raw.rglob("*.mp4")):
        for frame in read_frames(path, 3):
            boxes, probs = detector.detect(frame.image)
            assert boxes is not None, f"no face in {path.name} frame {frame.index}"
            assert float(np.max(np.asarray(probs, float))) > 0.95


def test_portrait_part_is_stored_portrait(tiny_raw):
    frame = read_frames(next((tiny_raw / "train" / "dfdc_train_part_1").glob("*.mp4")), 1)[0]
    assert frame.image.shape[:2] == (480, 270)


def test_fakes_differ_inside_the_face_and_not_far_outside(tiny_raw, detector):
    for part in sorted((tiny_raw / "train").iterdir()):
        meta = json.loads((part / "metadata.json").read_text())
        for name, entry in meta.items():
            if entry["label"] != "FAKE":
                continue
            fake = read_frames(part / name, 4)
            orig = read_frames(part / entry["original"], 4)
            for f, o in zip(fake, orig, strict=True):
                boxes, probs = detector.detect(o.image)
                x1, y1, x2, y2 = np.asarray(boxes[int(np.argmax(np.asarray(probs, float)))], float)
                diff = np.abs(f.image.astype(np.int16) - o.image.astype(np.int16)).mean(axis=2)
                inside = diff[int(y1) : int(y2), int(x1) : int(x2)].mean()
                # "Far outside": beyond the face box grown by its own size on every side.
                w, h = x2 - x1, y2 - y1
                far = np.ones_like(diff, bool)
                far[max(0, int(y1 - h)) : int(y2 + h), max(0, int(x1 - w)) : int(x2 + w)] = False
                outside = diff[far].mean()
                # After H.264 the whole frame differs a little (the encoder's choices change
                # with the content, as in real DFDC fakes); the face region stands far above.
                assert inside > 4.0, (name, entry.get("method"), inside)
                assert outside < 3.0, (name, entry.get("method"), outside)
                assert inside > 5 * outside, (name, entry.get("method"), inside, outside)


RENDER = """
import ctypes, glob, os, sys
import av
if sys.argv[2] != "default":
    # FFmpeg's run-time CPU dispatch, forced: "c" is its plain C code, as on a CPU without SIMD.
    libs = os.path.dirname(av.__file__) + ".libs"
    lib = ctypes.CDLL(glob.glob(os.path.join(libs, "libavutil-*"))[0])
    lib.av_force_cpu_flags(ctypes.c_int({"c": 0x1, "sse": 0x3DB}[sys.argv[2]]))
from dfdc.dataset.sample.build import plan_sample, render_video
from tests.conftest import TINY_SAMPLE
render_video(plan_sample(TINY_SAMPLE)[1], TINY_SAMPLE, sys.argv[1])
"""


def test_rendering_is_byte_reproducible(tmp_path):
    """Same bytes three times in one process (the first encode of a process once differed),
    in fresh processes with other hash seeds, and with FFmpeg forced onto its C and SSE code
    paths, which is what another CPU would pick (the AAC encoder and swscale once differed)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    plan = plan_sample(TINY_SAMPLE)[1]  # a fake: scene, manipulation and encoding all count
    assert plan.label == "FAKE"
    files = []
    for i in range(3):
        render_video(plan, TINY_SAMPLE, tmp_path / f"in{i}.mp4")
        files.append(tmp_path / f"in{i}.mp4")
    for seed, cpu in (("1", "default"), ("2", "c"), ("3", "sse")):
        out = tmp_path / f"{cpu}.mp4"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", RENDER, str(out), cpu], check=True, env=env, cwd=ROOT)
        files.append(out)
    first = files[0].read_bytes()
    assert first, "nothing written"
    assert [f.name for f in files if f.read_bytes() != first] == []


@pytest.mark.parametrize("method", ["faceswap", "selfblend"])
def test_manipulation_touches_only_the_face_before_encoding(method):
    """Before the codec, a fake equals its original exactly outside the face region."""
    from dfdc.dataset.sample.build import _actors
    from dfdc.dataset.sample.manipulate import self_blend, swap_face
    from dfdc.dataset.sample.photos import load_photos
    from dfdc.dataset.sample.scene import Actor, Scene

    photos = load_photos()
    scene = Scene((Actor(photos[0]),), 480, 270, seed=11)
    rng = np.random.default_rng(0)
    for t in (0, 7):
        clean = scene.render_clean(t)
        lm = scene.landmarks(t)[0]
        if method == "faceswap":
            photo, flip = _actors()[1]
            fake = swap_face(clean, lm, photos[photo], flip, rng)
        else:
            fake = self_blend(clean, lm, rng)
        diff = np.abs(scene.finish(clean, t).astype(int) - scene.finish(fake, t).astype(int)).max(
            axis=2
        )
        x1, y1, x2, y2 = scene.boxes(t)[0]
        w, h = x2 - x1, y2 - y1
        assert diff[int(y1) : int(y2), int(x1) : int(x2)].mean() > 4
        far = np.ones_like(diff, bool)
        far[
            max(0, int(y1 - 0.5 * h)) : int(y2 + 0.5 * h),
            max(0, int(x1 - 0.5 * w)) : int(x2 + 0.5 * w),
        ] = False
        assert diff[far].max() == 0
