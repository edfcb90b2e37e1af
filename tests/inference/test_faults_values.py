"""Fault matrix, values (inference): labelled videos that cannot be scored are named and counted
by ``dfdc evaluate`` (missing, a symlink loop, unreadable), each error printed once, under the
exit-status rule ``dfdc predict`` shares; an unscored video's report says "no score" in strict
JSON; reports of two files of the same name do not overwrite each other; the report says at
its top what the models were trained on."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from dfdc.cli import exit_status, main
from dfdc.core.config import to_dict
from dfdc.core.video import write_video
from dfdc.inference.predict import load_bundle
from dfdc.reports.video_report import read_report, report_folder, video_report


def _strict(text: str):
    """Parse JSON, failing on NaN / Infinity (which JSON.parse refuses)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


@pytest.fixture(scope="module")
def params_file(kernel_package, tmp_path_factory) -> Path:
    params, _, _ = kernel_package
    path = tmp_path_factory.mktemp("faults") / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(params)))
    return path


@pytest.fixture(scope="module")
def bundle(kernel_package):
    params, _, ens = kernel_package
    return load_bundle(params.base.models_dir, "cpu", ensemble=ens)


def _one_part(tiny_raw: Path, root: Path) -> Path:
    """A labelled set of the tiny sample's first training part (a real and its 2 fakes)."""
    part = sorted(p for p in (tiny_raw / "train").iterdir() if p.is_dir())[0]
    shutil.copytree(part, root / part.name)
    return root / part.name


@pytest.fixture
def odd_set(tiny_raw, tmp_path) -> Path:
    """One part of the tiny sample, whose metadata also lists a file that is not there, one
    that is a symbolic link to itself, and one that is not a video."""
    root = tmp_path / "set"
    part = _one_part(tiny_raw, root)
    meta = json.loads((part / "metadata.json").read_text())
    for name in ("gone.mp4", "loop.mp4", "broken.mp4"):
        meta[name] = {"label": "FAKE", "split": "train"}
    (part / "metadata.json").write_text(json.dumps(meta))
    os.symlink("loop.mp4", part / "loop.mp4")
    (part / "broken.mp4").write_bytes(b"\x00" * 100)
    return root


def test_evaluate_names_and_counts_every_labelled_video_it_did_not_score(
    odd_set, params_file, capsys
):
    assert main(["evaluate", str(odd_set), "--params", str(params_file), "--json"]) == 1
    out, err = capsys.readouterr()
    summary = _strict(out.strip().splitlines()[-1])
    assert summary["labelled"] == 6 and summary["scored"] == summary["n"] == 3
    assert summary["missing"] == 2 and summary["unreadable"] == 1 and summary["failed"] == 3
    why = {Path(u["path"]).name: (u["status"], u["reason"]) for u in summary["unscored"]}
    assert why["gone.mp4"] == ("missing", "file not found")
    assert why["loop.mp4"] == ("missing", "symlink loop")
    assert why["broken.mp4"][0] == "unreadable"
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 3  # each named once, not again by a log line
    for name in why:
        assert sum(name in ln for ln in err.splitlines()) == 1, (name, err)

    assert main(["evaluate", str(odd_set), "--params", str(params_file)]) == 1
    out, err = capsys.readouterr()
    assert "3 videos scored, 1 unreadable, 2 missing (of 6 labelled)" in out
    assert len([ln for ln in err.splitlines() if "error:" in ln]) == 3


def test_predict_and_evaluate_share_one_exit_rule(odd_set, tiny_raw, params_file, tmp_path, capsys):
    """Any input without a score: 1 from both (the others still scored); all scored: 0."""
    assert exit_status(0) == 0 and exit_status(3) == 1
    part = sorted(p for p in odd_set.iterdir() if p.is_dir())[0]
    good = next(p for p in sorted(part.glob("*.mp4")) if p.name not in ("loop.mp4", "broken.mp4"))
    assert main(["predict", str(good), str(part / "loop.mp4"), "--params", str(params_file)]) == 1
    out, err = capsys.readouterr()
    assert out.count("\t") == 1  # the good one still scored
    assert f"{part / 'loop.mp4'}: symlink loop" in err
    assert main(["predict", str(good), "--params", str(params_file)]) == 0
    capsys.readouterr()
    clean = tmp_path / "clean"
    _one_part(tiny_raw, clean)
    assert main(["evaluate", str(clean), "--params", str(params_file)]) == 0


def test_an_unscored_video_gets_no_verdict_and_strict_json(bundle, tmp_path):
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.mp4"
    write_video(noise, iter(rng.integers(0, 40, (8, 96, 128, 3), dtype=np.uint8)))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    for video, status in ((noise, "no_face"), (broken, "unreadable")):
        rep = video_report(bundle, video, tmp_path / "rep")
        data = _strict((rep.page.parent / "report.json").read_text())
        assert data["status"] == status and data["reason"]
        assert all(m["video_score"] is None for m in data["members"])
        page = rep.page.read_text()
        assert "FAKE" not in page and "REAL" not in page.split("<h2>")[0]
        assert "<b>no score</b>" in page and data["reason"].split(":")[0] in page
        assert "&ndash;" in page  # the members' scores: none, shown as a dash


def test_reports_of_two_files_with_one_name_do_not_overwrite_each_other(bundle, tiny_raw, tmp_path):
    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    for p in (a, b):
        p.parent.mkdir()
    shutil.copy(video, a)
    # b is another video under the same name.
    shutil.copy(sorted((tiny_raw / "test_videos").glob("*.mp4"))[1], b)
    ra = video_report(bundle, a, tmp_path / "rep")
    rb = video_report(bundle, b, tmp_path / "rep")
    assert ra.page.parent != rb.page.parent
    assert Path(read_report(ra.page.parent)["path"]).resolve() == a.resolve()
    assert Path(read_report(rb.page.parent)["path"]).resolve() == b.resolve()
    # The same input gets the same folder again.
    assert report_folder(tmp_path / "rep", a) == ra.page.parent
    assert video_report(bundle, b, tmp_path / "rep").page == rb.page
    assert len([p for p in (tmp_path / "rep").iterdir() if p.is_dir()]) == 2


def test_the_report_says_what_the_models_know_at_the_top(bundle, tiny_raw, tmp_path):
    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    rep = video_report(bundle, video, tmp_path)
    page = rep.page.read_text()
    top = page.split("<h2>")[0]  # the title, the verdict and what is beside it
    assert "P(fake) =" in top
    assert bundle.sample_models and rep.data["sample_models"] is True
    assert "Sample models." in top and "trained on: the generated sample" in top
    assert "they do not detect real deepfakes" in top
    assert top.index("P(fake) =") < top.index("Sample models.")


def test_the_explanations_follow_the_ensemble_weights(bundle, tiny_raw, tmp_path):
    """A member weighted 0 did not decide: no heatmap of it; the members that carry weight
    are explained."""
    from dataclasses import replace

    from dfdc.inference.predict import InferenceBundle

    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    runs = bundle.ensemble.runs  # the frame run, then the sequence run
    only_seq = InferenceBundle(
        bundle.predictor, replace(bundle.ensemble, weights=[0.0, 1.0]), bundle.spec
    )
    data = video_report(only_seq, video, tmp_path / "seq").data
    if data["status"] != "ok":
        pytest.skip(f"the clip was not scored here ({data['reason']})")
    weighted = {m["name"] for m in data["members"] if m["weight"] > 0}
    assert weighted and all(n.startswith(f"{runs[1]}/") for n in weighted)
    assert set(data["explained"]) == weighted
    assert data["heatmaps"] == {}  # the frame run (weight 0) drew none
    assert set(data["frame_effect"]) == weighted
    assert any("ensemble weight 0" in n and runs[0] in n for n in data["notes"])
    page = (tmp_path / "seq" / Path(data["path"]).stem / "index.html").read_text()
    assert "heatmaps.png" not in page


def test_each_picked_crop_is_labelled_with_its_own_rank_and_score():
    from dfdc.reports.video_report import pick_labels

    scores = np.array([0.9, 0.1, 0.5, 0.96, 0.9])
    assert pick_labels([3, 0, 4, 1], scores) == [
        "#1/5: 0.960", "#2/5: 0.900", "#3/5: 0.900", "#5/5: 0.100",
    ]  # fmt: skip
