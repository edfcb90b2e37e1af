"""Ensembling and calibration fitted out of fold, and the submission file."""

import logging

import numpy as np
import pandas as pd
import pytest

import dfdc.inference.fit as ens_mod
from dfdc.core.config import EnsembleConfig
from dfdc.core.metrics import log_loss
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.fit import fit_ensemble
from dfdc.inference.predict import InferenceBundle, VideoPrediction
from dfdc.inference.submission import make_submission

# The smallest clip the config allows: as good as none, for tests of weights alone.
NO_CLIP = {"clip_grid": (1e-6,), "min_clip": 1e-6}


def _oof(n=60, seed=0, runs=("good", "noise"), sharp=4.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    rows = []
    for run in runs:
        for i in range(n):
            if run == "noise":
                p = rng.uniform(0.2, 0.8, 4)
            else:  # informative but over-confident
                p = 1 / (1 + np.exp(-sharp * (2 * y[i] - 1) * rng.uniform(0.2, 1.5, 4)))
            row = {
                "run": run,
                "video": f"v{i}.mp4",
                "fold": i % 3,
                "label": int(y[i]),
                "part": f"p{i % 3}",
            }
            rows.append({**row, "original": None, "frame_probs": list(p), "tracks": [0] * 4})
    return pd.DataFrame(rows)


def test_weights_favour_the_informative_run_and_nested_is_reported():
    report = fit_ensemble(
        _oof(), EnsembleConfig(runs=("good", "noise"), temperature=False, **NO_CLIP)
    )
    w = dict(zip(report.ensemble.runs, report.ensemble.weights, strict=True))
    assert w["good"] > 0.8 and sum(w.values()) == pytest.approx(1)
    table = report.table.set_index("ensemble")
    blend = "blend of good + noise: "
    assert list(table.index) == [
        "good alone, no calibration",
        "good alone, calibrated nested by fold",
        "noise alone, no calibration",
        "noise alone, calibrated nested by fold",
        f"{blend}equal weights, no calibration",
        f"{blend}fitted, scored in-sample",
        f"{blend}fitted, scored nested by fold",
    ]
    # Even scored on folds it was not fitted on, down-weighting the noise beats equal weights.
    nested = table.loc[f"{blend}fitted, scored nested by fold", "logloss"]
    assert nested < table.loc[f"{blend}equal weights, no calibration", "logloss"]
    assert (
        table.loc["good alone, no calibration", "logloss"]
        < table.loc["noise alone, no calibration", "logloss"]
    )


def test_temperature_and_clip_fix_overconfidence():
    oof = _oof(runs=("good",), sharp=12.0)
    wrong = [1.0 - 1e-9] * 4 if oof.at[0, "label"] == 0 else [1e-9] * 4
    oof.at[0, "frame_probs"] = wrong  # certain and wrong
    report = fit_ensemble(oof, EnsembleConfig(runs=("good",)))
    assert report.ensemble.temperature > 1
    assert report.ensemble.clip > 0
    raw = fit_ensemble(oof, EnsembleConfig(runs=("good",), temperature=False, **NO_CLIP))
    assert report.table.iloc[1]["logloss"] < raw.table.iloc[1]["logloss"]


def test_no_clip_below_the_floor_and_no_answer_is_0_or_1():
    from dfdc.core.config import ConfigError, params_from_dict

    with pytest.raises(ConfigError, match=r"ensemble\.clip_grid: every bound must be >= "):
        params_from_dict({"ensemble": {"clip_grid": [0.0, 0.01]}})
    with pytest.raises(ConfigError, match=r"ensemble\.min_clip"):
        params_from_dict({"ensemble": {"min_clip": 0.0}})
    # Separable, over-confident scores: the fit wants no clip at all, and gets the floor.
    oof = _oof(runs=("good",), sharp=40.0)
    report = fit_ensemble(oof, EnsembleConfig(runs=("good",)))
    assert report.ensemble.clip >= EnsembleConfig().min_clip > 0


def test_temperature_is_shrunk_toward_one_with_few_videos():
    """Under-confident but perfectly ranked scores ask for sharpening (T < 1); with 24 videos
    the fitted log-temperature keeps 24 / (24 + 200) of itself, with 24,000 nearly all."""
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 12)
    p = 0.5 + (2 * y - 1) * rng.uniform(0.01, 0.08, len(y))
    t_raw = ens_mod._fit_temperature(p, y, prior_videos=0)
    t_small = ens_mod._fit_temperature(p, y, prior_videos=200)
    assert t_raw < 0.2  # the fit alone would sharpen hard
    assert t_small == pytest.approx(np.exp(np.log(t_raw) * 24 / 224), rel=1e-6)
    big_y, big_p = np.tile(y, 1000), np.tile(p, 1000)
    assert ens_mod._fit_temperature(big_p, big_y, 200) == pytest.approx(t_raw, rel=0.05)


def test_a_softening_temperature_is_kept_as_fitted():
    """Overconfident scores (a fifth of them confidently wrong) ask for softening (T > 1):
    the prior does not pull it back toward 1, however few the videos, so the calibration
    never leaves an overconfident model as confident as it was."""
    rng = np.random.default_rng(2)
    y = np.tile([0, 1], 12)
    right = rng.random(len(y)) > 0.2
    p = np.where(right == (y == 1), 0.97, 0.03)
    t_raw = ens_mod._fit_temperature(p, y, prior_videos=0)
    assert t_raw > 1.5
    assert ens_mod._fit_temperature(p, y, prior_videos=200) == pytest.approx(t_raw, rel=1e-9)


def test_a_worst_group_calibration_protects_the_overconfident_group():
    """Originals scored honestly, a copy level a third of the size scored as confidently and
    right only 70 % of the time: pooled, the temperature serves the originals and leaves the
    copies above a constant's log loss (0.693); fitted on the worst group, both stay below it,
    the copies by much more than the originals lose."""
    rng = np.random.default_rng(3)
    y0 = np.tile([0, 1], 90)
    p0 = 1 / (1 + np.exp(-(2 * y0 - 1) * rng.uniform(0.5, 2.5, len(y0))))
    y1 = np.tile([0, 1], 30)
    right = rng.random(len(y1)) < 0.7
    p1 = np.where(right == (y1 == 1), 0.93, 0.07)
    y, p = np.concatenate([y0, y1]), np.concatenate([p0, p1])
    groups = np.array([""] * len(y0) + ["crf38"] * len(y1))

    def losses(t):
        q = 1 / (1 + np.exp(-np.log(p / (1 - p)) / t))
        return log_loss(y0, q[: len(y0)]), log_loss(y1, q[len(y0) :])

    pooled = losses(ens_mod._fit_temperature(p, y, 0))
    worst = losses(ens_mod._fit_temperature(p, y, 0, groups))
    assert pooled[1] > 0.693 > worst[1] and worst[0] < 0.693
    assert pooled[1] - worst[1] > worst[0] - pooled[0] > 0


def test_nested_fits_never_see_the_held_out_fold(monkeypatch):
    seen = []
    real = ens_mod._fit

    def spy(scores, y, cfg, runs, groups=None):
        seen.append(len(y))
        return real(scores, y, cfg, runs, groups)

    monkeypatch.setattr(ens_mod, "_fit", spy)
    oof = _oof(n=60)
    fit_ensemble(oof, EnsembleConfig(runs=("good", "noise")))
    # One fit on all 60 out-of-fold videos, then one per fold on the other two folds (40);
    # then each run alone, calibrated nested by fold (2 runs x 3 folds, 40 each).
    assert seen == [60, 40, 40, 40] + [40] * 6


def test_ensemble_apply_clips_and_weights():
    e = Ensemble(["a", "b"], [0.75, 0.25], clip=0.05)
    p = e.apply(np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert p == pytest.approx([0.75, 0.05])


class _FakePredictor:
    def __init__(self, bad):
        self.bad = bad

    def predict_video(self, path):
        if path.name in self.bad:
            return VideoPrediction(path.name, 0.5, "unreadable", "decode failed")
        probs = [0.9, 0.8] if path.name.startswith("f") else [0.1, 0.3]
        score = float(np.mean(probs))  # the members' video scores under the mean rule
        return VideoPrediction(path.name, 0.0, "ok", frames=[0, 5], tracks=[0, 0],
                               frame_probs={"run/fold0": probs, "run/fold1": probs},
                               member_scores={"run/fold0": score, "run/fold1": score})  # fmt: skip


def test_submission_has_every_file_once_in_order(tmp_path, caplog):
    order = ["r1.mp4", "f1.mp4", "f2.mp4", "broken.mp4", "absent.mp4"]
    paths = [tmp_path / n for n in order[:4]]
    e = Ensemble(["run"], [1.0], clip=0.02)
    with caplog.at_level(logging.WARNING):
        bundle = InferenceBundle(_FakePredictor({"broken.mp4"}), e)
        sub = make_submission(paths, order, bundle, tmp_path / "submission.csv")
    assert sub["filename"].tolist() == order
    assert not sub["label"].isna().any() and sub["label"].between(0.02, 0.98).all()
    assert sub.set_index("filename").loc["f1.mp4", "label"] == pytest.approx(0.85)
    assert sub.set_index("filename").loc["broken.mp4", "label"] == 0.5
    assert "2 of 5 test videos failed" in caplog.text
    text = (tmp_path / "submission.csv").read_text().splitlines()
    assert text[0] == "filename,label" and text[2] == "f1.mp4,0.850000"
    assert not {"0.000000", "1.000000"} & {row.split(",")[1] for row in text[1:]}
    assert log_loss([1], [sub["label"].iloc[1]]) < 0.2


def test_the_mistake_gallery_reads_original_videos_only():
    """With the compressed copies in the fit (``name@level`` rows, as a real dataset has), the
    gallery's table holds the original videos with their files and nested scores; the copies
    have no video to report (``make real`` once failed here with a KeyError)."""
    from dfdc.stages.ensemble import oof_videos

    oof = _oof(n=12, runs=("good",)).assign(copy="")
    copies = oof.assign(video=oof["video"] + "@crf38", copy="crf38")
    report = fit_ensemble(pd.concat([oof, copies]), EnsembleConfig(runs=("good",)))
    assert (report.matrix["copy"] == "crf38").sum() == 12
    index = pd.DataFrame({"name": [f"v{i}.mp4" for i in range(12)],
                          "path": [f"/data/v{i}.mp4" for i in range(12)]})  # fmt: skip
    rows = oof_videos(report, index)
    assert sorted(rows["name"]) == sorted(index["name"])
    assert (rows["path"] == "/data/" + rows["name"]).all()
    nested = pd.Series(report.oof_prob, index=report.matrix.index)
    assert np.allclose(rows["prob"], nested.loc[rows["name"]])
    assert set(rows["label"]) <= {0, 1} and rows["label"].dtype.kind == "i"


def test_a_frame_score_is_what_the_ensemble_makes_of_that_frame():
    """Ensemble.frame_scores puts each crop through what Ensemble.prob does to the video
    scores: with every frame of a member at its video score, each frame scores the video's
    probability."""
    ens = Ensemble(["a", "b"], [0.8, 0.2], temperature=1.6, clip=0.03)
    videos = {"a/fold0": 0.9, "a/fold1": 0.6, "b/fold0": 0.1}
    frames = {name: [score] * 5 for name, score in videos.items()}
    assert ens.frame_scores(frames) == pytest.approx([ens.prob(videos)] * 5)
    frames["a/fold1"][2] = 0.999  # one frame of one member: only that crop moves
    scores = ens.frame_scores(frames)
    assert scores[2] > scores[0] and np.allclose(np.delete(scores, 2), ens.prob(videos))
    with pytest.raises(ValueError, match="needs runs"):
        ens.frame_scores({"a/fold0": [0.5]})


def test_an_ensemble_fitted_for_fewer_frames_is_fitted_on_those_frames():
    """``ensemble.frames``: each video's out-of-fold scores cut to that many frames, evenly
    spaced as the faces stage spreads them, both faces of a frame kept; the fitted ensemble
    carries the count, so scoring samples what the calibration was fitted on."""
    oof = _oof(n=30, runs=("good",))
    frames = [0, 0, 3, 3, 5, 5, 9, 9]  # two faces a frame: tracks 0 and 1
    oof["frames"] = [frames] * len(oof)
    oof["tracks"] = [[0, 1] * 4] * len(oof)
    oof["frame_probs"] = [[p[0], 0.5, 0.9, 0.1, 0.9, 0.1, p[1], 0.5] for p in oof["frame_probs"]]
    cut = ens_mod.fewer_frames(oof, 2)  # frames 0 and 9 of the four: first and last
    assert all(list(f) == [0, 0, 9, 9] for f in cut["frames"])
    assert all(list(t) == [0, 1, 0, 1] for t in cut["tracks"])
    report = fit_ensemble(oof, EnsembleConfig(runs=("good",), frames=2, **NO_CLIP))
    assert report.ensemble.frames == 2
    # Face 0 is the frames' first score, face 1 the constant 0.5; faces combine by max.
    want = [max(np.mean([p[0], p[6]]), 0.5) for p in oof["frame_probs"]]
    got = report.matrix["good"].reindex(oof["video"]).to_numpy()
    np.testing.assert_allclose(got, want)
    assert ens_mod.fewer_frames(oof, 0) is oof  # 0: every frame
