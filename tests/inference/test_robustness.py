"""The robustness report: each distortion changes what it should and nothing else, the same
bytes per seed, out-of-fold scoring, the report's shape, and the stage on the tiny sample."""

import hashlib
import json

import av
import numpy as np
import pandas as pd
import pytest

from dfdc.core.config import ConfigError, RobustnessConfig, params_from_dict, to_dict
from dfdc.core.video import probe, read_frames, write_video
from dfdc.robustness.distort import NotApplicable, distort_video, overlay_layout
from dfdc.robustness.report import robustness_metrics, score_jobs
from tests.conftest import tiny_params


def _clip(path, n=30, fps=30, size=(160, 120), audio=True):
    """A moving pattern with smooth parts and edges, with a quiet audio track."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]

    def frames():
        for i in range(n):
            checker = 60 * (((xx + i) // 6 + yy // 6) % 2)  # edges, for blur to remove
            r = (98 + 70 * np.sin((xx + 2 * i) / 17) + checker).astype(np.uint8)
            g = (128 + 100 * np.cos((yy - i) / 13)).astype(np.uint8)
            b = ((xx + yy) % 256).astype(np.uint8)
            yield np.dstack([r, g, b])

    write_video(path, frames(), fps=fps, qp=18, audio_seconds=n / fps if audio else None)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return _clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def _frames(path):
    return np.stack([f.image.astype(np.float32) for f in read_frames(path, 1000)])


def _audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def test_frame_rate_change_keeps_the_duration_and_the_audio(clip, tmp_path):
    out = distort_video(clip, tmp_path / "fps.mp4", "fps", 15)
    info = probe(tmp_path / "fps.mp4")
    assert out["frames"] == 15 and info.fps == pytest.approx(15)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert _audio_packets(tmp_path / "fps.mp4") == _audio_packets(clip)


def test_downscale_stores_the_clip_at_that_size(clip, tmp_path):
    out = distort_video(clip, tmp_path / "small.mp4", "downscale", 0.5)
    info = probe(tmp_path / "small.mp4")
    assert (out["width"], out["height"]) == (info.width, info.height) == (80, 60)
    assert info.fps == pytest.approx(30) and out["frames"] == 30


def test_flip_mirrors_the_frames_within_codec_error(clip, tmp_path):
    distort_video(clip, tmp_path / "control.mp4", "reencode", 1)
    distort_video(clip, tmp_path / "flip.mp4", "flip", 1)
    control, flipped = _frames(tmp_path / "control.mp4"), _frames(tmp_path / "flip.mp4")
    codec = np.abs(control - _frames(clip)).mean()  # one re-encode's error
    assert np.abs(flipped - control[:, :, ::-1]).mean() < 2 * codec + 1
    assert np.abs(flipped - control).mean() > 20


def test_overlay_covers_its_share_of_the_frame_and_not_the_middle(clip, tmp_path):
    distort_video(clip, tmp_path / "control.mp4", "reencode", 1)
    distort_video(clip, tmp_path / "over.mp4", "overlay", 0.2)
    control, over = _frames(tmp_path / "control.mp4"), _frames(tmp_path / "over.mp4")
    changed = (np.abs(over - control).max(axis=3) > 30).mean(axis=0)  # per pixel, over frames
    covered = (changed > 0.5).mean()
    assert 0.1 < covered < 0.35
    h, w = changed.shape
    assert changed[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean() < 0.2  # the middle stays
    items = overlay_layout(160, 120, 0.2, np.random.default_rng(0))
    assert {k for k, *_ in items} == {"picture", "rectangle", "circle", "text"}


def test_brightness_noise_blur_and_compression_change_the_pixels_as_named(clip, tmp_path):
    distort_video(clip, tmp_path / "control.mp4", "reencode", 1)
    control = _frames(tmp_path / "control.mp4")
    distort_video(clip, tmp_path / "noise.mp4", "noise", 10)
    noise = _frames(tmp_path / "noise.mp4") - control
    assert 3 < noise.std() < 12
    distort_video(clip, tmp_path / "blur.mp4", "blur", 15)  # sigma 1.7 px at 120 lines
    blur = _frames(tmp_path / "blur.mp4")

    def detail(x):
        return np.abs(np.diff(x, axis=2)).mean()

    assert detail(blur) < 0.8 * detail(control)
    distort_video(clip, tmp_path / "dim.mp4", "brightness", 0.5)
    assert _frames(tmp_path / "dim.mp4").std() < 0.7 * control.std()
    distort_video(clip, tmp_path / "crf.mp4", "crf", 45)
    assert (tmp_path / "crf.mp4").stat().st_size < (tmp_path / "control.mp4").stat().st_size


def test_same_seed_same_bytes_other_seed_other_noise(clip, tmp_path):
    def digest(name, seed):
        distort_video(clip, tmp_path / name, "mix", 1, seed=seed)
        return hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()

    assert digest("a.mp4", 3) == digest("b.mp4", 3)
    distort_video(clip, tmp_path / "n1.mp4", "noise", 10, seed=1)
    distort_video(clip, tmp_path / "n2.mp4", "noise", 10, seed=2)
    assert (tmp_path / "n1.mp4").read_bytes() != (tmp_path / "n2.mp4").read_bytes()


def test_the_noise_frame_is_the_frame_plus_level_times_its_generators_noise():
    """The in-place noise (one float32 buffer) gives exactly ``img + level * N(0, 1)``, clipped,
    from the generator of (seed, frame index): the copies it wrote before stay valid."""
    from dfdc.core.video import VideoInfo
    from dfdc.robustness.distort import DISTORTIONS

    img = np.random.default_rng(0).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    info = VideoInfo(readable=True, width=64, height=36, fps=30.0, frame_count=10)
    plan = DISTORTIONS["noise"].plan(15, info, np.random.default_rng(5), 18)
    seed = int(np.random.default_rng(5).integers(2**32))
    for i in (0, 7):
        noise = np.random.default_rng([seed, i]).standard_normal(img.shape, np.float32)
        expected = np.clip(img.astype(np.float32) + 15 * noise, 0, 255).astype(np.uint8)
        assert np.array_equal(plan.frame(img, i), expected)
    assert not np.array_equal(plan.frame(img, 0), img)


def test_a_distortion_that_cannot_apply_says_why(tmp_path):
    slow = _clip(tmp_path / "slow.mp4", n=10, fps=10, audio=False)
    with pytest.raises(NotApplicable, match="10 fps"):
        distort_video(slow, tmp_path / "x.mp4", "fps", 15)
    with pytest.raises(NotApplicable, match="too small"):
        distort_video(slow, tmp_path / "y.mp4", "downscale", 0.25)
    assert not (tmp_path / "x.mp4").exists()


def test_levels_out_of_range_name_the_key():
    with pytest.raises(ConfigError, match=r"robustness\.crf"):
        params_from_dict({"robustness": {"crf": [60]}})
    assert list(RobustnessConfig(fps=(), crf=(30.0,)).levels())[:3] == [
        "reencode",
        "downscale",
        "crf",
    ]


class _Pred:
    def __init__(self, status, prob, models):
        self.status, self.prob, self.reason = status, prob, None
        self.frame_probs = {m: [prob] for m in models}


class _Bundle:
    """Scores by file name; records which group's models it stands for."""

    def __init__(self, group):
        self.group = group

    def score(self, path):
        if "broken" in str(path):
            return _Pred("unreadable", 0.5, [])
        return _Pred("ok", 0.8 if "fake" in str(path) else 0.3, [f"run/{self.group}"])


def test_report_scores_every_version_and_survives_bad_clips(clip, tmp_path):
    from dfdc.robustness.report import Job

    fake = tmp_path / "fake.mp4"
    fake.write_bytes(clip.read_bytes())
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    cfg = RobustnessConfig(fps=(15.0, 45.0), downscale=(0.5,), crf=(), overlay=(), flip=(1.0,),
                           brightness=(), noise=(), blur=(), mix=())  # fmt: skip
    jobs = [Job("real", clip, 0, "fold0"), Job("fake", fake, 1, "fold1"),
            Job("broken", broken, 1, "fold1"),
            Job("gone", tmp_path / "gone.mp4", 0, "fold0")]  # fmt: skip
    scores = score_jobs(jobs, _Bundle, cfg, tmp_path / "cache")
    # Out of fold: each video scored only by its own group's models.
    ok = scores[scores["status"] == "ok"]
    assert (ok["models"] == "run/" + ok["group"]).all()
    skipped = scores[scores["status"] == "skipped"]
    assert set(skipped["level"]) == {45.0} and "not above 45" in skipped["reason"].iloc[0]
    assert set(scores.loc[scores["video"] == "broken", "status"]) == {"failed"}
    m = robustness_metrics(scores, cfg)
    assert m["clean"]["n"] == 2 and m["clean"]["auc"] == 1.0
    assert set(m["distortions"]) == {"reencode", "fps", "downscale", "flip"}
    lv = m["distortions"]["fps"]["levels"]["15"]
    assert set(lv) >= {"logloss", "auc", "accuracy", "n", "delta_logloss", "delta_auc"}
    assert lv["n"] == 2 and lv["delta_logloss"] == pytest.approx(0.0)
    assert m["distortions"]["fps"]["levels"]["45"] == {"n": 0}
    gone = scores[scores["video"] == "gone"]  # a missing file: one row, never distorted
    assert gone[["status", "reason"]].values.tolist() == [["failed", "file not found"]]
    assert len(m["failed"]) == 2 and len(m["skipped"]) == 2  # broken, gone: a line each
    assert m["unscored"] == 2
    json.dumps(m)  # the JSON file's content


def test_stage_on_the_tiny_sample_scores_out_of_fold(tiny_stage, tmp_path):
    from dfdc.inference.ensemble import Ensemble
    from dfdc.stages.robustness import run
    from dfdc.training.loop import fit

    base = tiny_params(tiny_stage, run="rob", epochs=1)
    for fold in (0, 1):
        fit(base, fold, max_batches=1)
    Ensemble(["rob"], [1.0], clip=0.01).save(tmp_path / "ensemble.json")
    raw = to_dict(base)
    raw["ensemble"].update(ensemble_path=str(tmp_path / "ensemble.json"))
    raw["robustness"] = {
        "out_dir": str(tmp_path / "clips"), "metrics_path": str(tmp_path / "rob.json"),
        "plots_dir": str(tmp_path / "plots"), "videos": 2, "include_test": False,
        "fps": [15], "downscale": [0.5], "crf": [], "overlay": [0.2], "flip": [],
        "brightness": [], "noise": [], "blur": [], "mix": [],
    }  # fmt: skip
    params = params_from_dict(raw)
    result = run(params)
    folds = pd.read_parquet(tiny_stage / "folds.parquet").set_index("name")["fold"]
    scored = result.scores[result.scores["status"].isin(["ok", "no_face"])]
    assert len(scored) and scored["video"].nunique() == 2
    assert scored["models"].astype(bool).any()
    for video, models in zip(scored["video"], scored["models"], strict=True):
        if models:  # a clip with no face found was scored 0.5 by no model
            assert models == f"rob/fold{folds[video]}"
    written = json.loads((tmp_path / "rob.json").read_text())
    assert set(written["distortions"]) == {"reencode", "fps", "downscale", "overlay"}
    # The DVC metric beside it: one figure, the mean log loss over the scored levels.
    levels = [m for d in written["distortions"].values() for m in d["levels"].values()]
    mean = np.mean([m["logloss"] for m in levels if m["n"]])
    headline = json.loads((tmp_path / "headline" / "rob.json").read_text())
    assert headline == {"distorted_logloss": pytest.approx(mean)}
    assert (tmp_path / "plots" / "fps.csv").read_text().startswith("severity,level,logloss,auc")
    assert set(result.examples) >= {"clean", "fps"}


def test_cli_reports_labelled_folders_with_the_ensemble(kernel_package, tiny_raw, tmp_path, capsys):
    import shutil

    import yaml

    from dfdc.cli import main

    params, _, _ = kernel_package
    raw = to_dict(params)
    raw["robustness"] = {"fps": [], "downscale": [0.5], "crf": [], "overlay": [], "flip": [1],
                         "brightness": [], "noise": [], "blur": [], "mix": []}  # fmt: skip
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    root = tmp_path / "set"
    shutil.copytree(sorted((tiny_raw / "train").iterdir())[0], root)
    assert main(["robustness", str(root), "--params", str(params_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["distortions"]) == {"reencode", "downscale", "flip"}
    assert out["videos"] == 3 and out["clean"]["n"] == 3 and out["groups"] == ["all"]
    assert out["unscored"] == 0

    # A labelled video whose file is gone: counted and named once, the rest scored, exit 1
    # (the rule dfdc predict and dfdc evaluate share).
    gone = sorted(root.glob("*.mp4"))[0]
    gone.unlink()
    assert main(["robustness", str(root), "--params", str(params_file), "--json"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["videos"] == 3 and out["clean"]["n"] == 2 and out["unscored"] == 1
    assert [r["reason"] for r in out["failed"]] == ["file not found"]
    assert captured.err.count(gone.name) == 1 and "file not found" in captured.err
    assert main(["robustness", str(tmp_path / "nope"), "--params", str(params_file)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_overlay_patches_augmentation_covers_part_of_the_crop_alike_in_a_pair():
    from dfdc.core.config import AugConfig
    from dfdc.crops.transforms import train_transform

    off = {k: 0.0 for k in ("jpeg_p", "noise_p", "blur_p", "flip_p", "downscale_p", "color_p",
                            "gray_p", "affine_p", "part_dropout_p")}  # fmt: skip
    t = train_transform(AugConfig(**off, overlay_p=1.0), 64, seed=0, pairs=True)
    img = np.full((64, 64, 3), 128, np.uint8)
    for _ in range(5):
        out = t(image=img, image1=img.copy())
        assert (out["image"] == out["image1"]).all()
        plain = train_transform(AugConfig(**off), 64, seed=0)(image=img)["image"]
        covered = (out["image"] != plain).any(0).float().mean()
        assert 0.005 < covered <= 0.3
