"""The real-data path end to end at smoke size: ``make real`` on a few shared FaceForensics++
clips in the dataset's own layout, run in a copy of this working tree.

The sample that ``make repro`` builds takes none of the branches a real dataset takes (the
``real`` recipe, pairs of a fake and its original, the compress stage's copies and their
out-of-fold rows, galleries with mistakes, FF++ groups): this test takes all of them, through
the same ``make real`` command a user types, with only sizes shrunk (2 identity folds, one
epoch, 8 frames a video, small crops), and checks that every stage, notebooks included, ran.
The sequence run is not part of the real recipe (``make real`` leaves it out, docs/real-data.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.shared

FFPP = SHARED / "ffpp"
# Two identity pairs (so two identity folds), both directions of each, three methods.
ORIGINALS = ("035", "036", "210", "241")
FAKES = {
    "Deepfakes": ("035_036", "036_035", "210_241", "241_210"),
    "Face2Face": ("210_241",),
    "FaceSwap": ("241_210",),
}
# The real recipe trains the frame run alone (make real: sequence.folds [], docs/real-data.md).
NOTEBOOK_STAGES = (
    "00_eda", "10_extract_faces", "20_train_fold0", "20_train_fold1", "30_ensemble",
    "40_package_kernel", "50_evaluate", "60_robustness",
)  # fmt: skip


# A held-out set for the evaluate stage: another identity pair, one real and one fake.
HELD_OUT = (("055",), {"Deepfakes": ("055_147",)})


def _link_subset(dst: Path, originals=ORIGINALS, fakes=FAKES) -> Path:
    """The chosen clips linked (not copied) into an FF++ layout of their own."""
    orig = dst / "original_sequences" / "youtube" / "c23" / "videos"
    orig.mkdir(parents=True)
    for name in originals:
        (orig / f"{name}.mp4").symlink_to(FFPP / orig.relative_to(dst) / f"{name}.mp4")
    for method, names in fakes.items():
        rel = Path("manipulated_sequences") / method / "c23" / "videos"
        (dst / rel).mkdir(parents=True)
        for name in names:
            (dst / rel / f"{name}.mp4").symlink_to(FFPP / rel / f"{name}.mp4")
    return dst


def _copy_tree(dst: Path) -> None:
    """This working tree's files (tracked, and untracked but not ignored) as a new git repo:
    what a fresh clone of the tree under test would hold."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _shrink(params_file: Path, held_out: Path) -> None:
    """Smoke sizes; every branch of the real recipe kept (copies, pairs, gallery)."""
    p = yaml.safe_load(params_file.read_text())
    p["eda"].update(sample_frames=2, max_grid_videos=4)
    p["faces"].update(frames=8, detect_every=4)
    p["compress"].update(train_crf=[33], train_downscale=[0.5], validate_crf=[38])
    p["train"].update(epochs=1, batch_size=8, frames_per_video=4)
    p["train"]["model"]["input_size"] = 96
    p["robustness"].update(
        videos=2, reencode=[1], fps=[], downscale=[], crf=[38], overlay=[], flip=[],
        brightness=[], noise=[], blur=[], mix=[],
    )  # fmt: skip
    p["evaluate"]["sets"] = [str(held_out)]
    p["package"]["time_videos"] = 0
    params_file.write_text(yaml.safe_dump(p, sort_keys=False))


def test_make_real_runs_every_stage_on_ffpp_clips(tmp_path):
    repo, data = tmp_path / "repo", _link_subset(tmp_path / "ffpp")
    held_out = _link_subset(tmp_path / "held_out", *HELD_OUT)
    _copy_tree(repo)
    _shrink(repo / "params.yaml", held_out)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "tree"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True)
    # The README's command, with the venv this suite runs in (-o install: already installed).
    venv = Path(sys.executable).parent.parent
    res = subprocess.run(
        ["make", "-o", "install", "real", f"DATA={data}", "FOLDS=2", f"VENV={venv}"],
        cwd=repo, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, f"make real failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"

    # Every notebook stage ran and left its executed notebook and page.
    for name in NOTEBOOK_STAGES:
        assert (repo / "reports" / "notebooks" / f"{name}.html").is_file(), name
    # The real recipe's branches: the copies, in training and in the fit; both runs blended.
    index = yaml.safe_load((repo / "params.yaml").read_text())
    assert index["data"]["source"] == "ffpp"
    copies = (repo / "data" / "interim" / "compressed.parquet").stat().st_size
    assert copies > 0
    cv = json.loads((repo / "metrics" / "cv.json").read_text())
    assert cv["n_videos"] == len(ORIGINALS) + sum(map(len, FAKES.values()))
    assert set(cv["copies"]) >= {"crf38"}, cv.get("copies")
    ensemble = json.loads((repo / "submissions" / "ensemble.json").read_text())
    assert ensemble["runs"] == ["baseline"]
    assert not (repo / "reports" / "notebooks" / "20_train_sequence_fold0.html").exists()
    # The later stages: ONNX export, the cross-dataset set, robustness, the kernel.
    assert (repo / "submissions" / "export" / "export.json").is_file()
    evaluation = json.loads((repo / "metrics" / "eval.json").read_text())
    assert evaluation["sets"] == [str(held_out)] and evaluation["n"] == 2, evaluation
    assert (repo / "metrics" / "robustness.json").is_file()
    assert any((repo / "submissions" / "kernel").rglob("*.py"))
    # DVC recorded the run: nothing is left to reproduce.
    status = subprocess.run(
        ["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert status.returncode == 0 and json.loads(status.stdout or "{}") == {}, status.stdout
