import dataclasses
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


# The tiny sample's clips cut to 6 frames: every code path of a clip, in a fraction of the time.
SHORT = dataclasses.replace(TINY_SAMPLE, frames=6)

RENDER = """
import ctypes, glob, os, sys
import av
if sys.argv[2] in ("c", "older-cpu"):
    # FFmpeg's run-time CPU dispatch, forced: its plain C code, as on a CPU without SIMD, or
    # SSE to SSE4.2 without AVX.
    libs = os.path.dirname(av.__file__) + ".libs"
    lib = ctypes.CDLL(glob.glob(os.path.join(libs, "libavutil-*"))[0])
    lib.av_force_cpu_flags(ctypes.c_int({"c": 0x1, "older-cpu": 0x3DB}[sys.argv[2]]))
if sys.argv[2] == "one-core":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from dfdc.dataset.sample.build import plan_sample, render_video
from tests.data.test_sample import SHORT
for i in (1, 2):
    render_video(plan_sample(SHORT)[i], SHORT, f"{sys.argv[1]}{i}.mp4")
"""


def _older_cpu_env() -> dict[str, str]:
    """Every library the generator uses, told to pick the kernels an older x86-64 CPU would:
    OpenBLAS's Prescott kernel (no FMA), OpenCV without its dispatched code and with IPP's SSE4.2
    code, numpy's baseline loops, glibc's libm without AVX/FMA, torch's default kernels."""
    umath = np._core._multiarray_umath
    return {
        "OPENBLAS_CORETYPE": "Prescott",
        "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2,FMA3,FP16,AVX,SSE4.2,SSE4.1,POPCNT,SSSE3",
        "OPENCV_IPP": "sse42",
        "NPY_DISABLE_CPU_FEATURES": " ".join(
            f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)
        ),
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX",
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    }


def test_rendering_is_byte_identical_on_any_cpu(tmp_path):
    """A faceswap and a selfblend fake (scene, manipulation and encoding all count) rendered
    twice in this process (the first encode of a process once differed), then in fresh
    processes with other hash seeds and as other machines would: FFmpeg on its C code (the AAC
    encoder and swscale once differed), every library on an older CPU's kernels, FFmpeg's SSE
    code included (OpenBLAS's kernel moved the landmarks, OpenCV's AVX2 blur and torch's MTCNN
    moved the pixels), and on one core with one thread."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    plans = plan_sample(SHORT)
    assert [(p.label, p.method) for p in plans[1:3]] == [
        ("FAKE", "faceswap"),
        ("FAKE", "selfblend"),
    ]
    for run in ("in0-", "in1-"):
        for i in (1, 2):
            render_video(plans[i], SHORT, tmp_path / f"{run}{i}.mp4")
    conditions = {
        "default": {"PYTHONHASHSEED": "1"},
        "c": {"PYTHONHASHSEED": "2"},
        "older-cpu": {"PYTHONHASHSEED": "3", **_older_cpu_env()},
        "one-core": {"OMP_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1"},
    }
    for name, extra in conditions.items():
        path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        env = {**os.environ, "PYTHONPATH": path, **extra}
        out = f"{tmp_path / name}-"
        subprocess.run([sys.executable, "-c", RENDER, out, name], check=True, env=env, cwd=ROOT)
    runs = ["in0-", "in1-", *(f"{name}-" for name in conditions)]
    for i in (1, 2):
        first = (tmp_path / f"in0-{i}.mp4").read_bytes()
        assert first, "nothing written"
        differ = [r for r in runs if (tmp_path / f"{r}{i}.mp4").read_bytes() != first]
        assert differ == [], (plans[i].method, differ)


def test_recorded_faces_are_what_mtcnn_finds():
    """The photos' faces are recorded, not detected at run time (MTCNN's floats move with the
    CPU); the record must stay what the pipeline's MTCNN finds, to 0.05 pixel."""
    from dfdc.dataset.sample.photos import LOADERS, detect_face, load_photos

    for photo in load_photos():
        box, landmarks = detect_face(LOADERS[photo.name]())
        np.testing.assert_allclose(photo.box, box, atol=0.05, err_msg=photo.name)
        np.testing.assert_allclose(photo.landmarks, landmarks, atol=0.05, err_msg=photo.name)


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
