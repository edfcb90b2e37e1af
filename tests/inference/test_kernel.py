"""The offline Kaggle kernel: its metadata, its contents, and a run against a stand-in
``/kaggle/input`` that gives the workspace's own predictions."""

import json
import os

import pandas as pd

from dfdc.inference.kernel import kernel_files_text
from dfdc.inference.predict import load_bundle
from dfdc.inference.submission import make_submission
from tests.conftest import ROOT, run_offline_kernel


def test_metadata_has_the_fields_the_cli_checks(kernel_package):
    _, out, _ = kernel_package
    kmeta = json.loads((out / "kernel" / "kernel-metadata.json").read_text())
    assert kmeta["id"] == "someone/dfdc-workspace-inference"
    assert (out / "kernel" / kmeta["code_file"]).exists()
    assert kmeta["language"] == "python" and kmeta["kernel_type"] in ("script", "notebook")
    assert kmeta["enable_internet"] is False and kmeta["enable_gpu"] is True
    assert kmeta["competition_sources"] == ["deepfake-detection-challenge"]
    assert sorted(kmeta["dataset_sources"]) == [
        "someone/dfdc-workspace-code",
        "someone/dfdc-workspace-models",
    ]
    for folder in ("models", "code"):
        dmeta = json.loads((out / folder / "dataset-metadata.json").read_text())
        owner, slug = dmeta["id"].split("/")
        assert owner == "someone" and slug == f"dfdc-workspace-{folder}"
        assert 6 <= len(dmeta["title"]) <= 50
        assert len(dmeta["licenses"]) == 1 and dmeta["licenses"][0]["name"]
    wheels = sorted(p.name for p in (out / "code").glob("*.whl"))
    assert wheels[0].startswith("dfdc-") and any(
        w.startswith("facenet_pytorch-2.5.3") for w in wheels
    )
    assert (out / "models" / "kernel" / "fold0" / "best.pt").exists()
    # kaggle datasets create skips sub-folders unless told to zip them: the models are nested.
    assert (out / "models" / "ensemble.json").exists()


def test_kernel_holds_no_build_paths_or_credentials(kernel_package):
    _, out, _ = kernel_package
    text = kernel_files_text(out)
    assert "video_auc" in text  # the packaged checkpoints' saved metrics are read too
    assert str(ROOT) not in text and str(out) not in text
    assert os.path.expanduser("~") + "/" not in text
    assert "secret-key-should-not-leak" not in text


def test_offline_kernel_run_matches_the_workspace(kernel_package, tiny_raw, tmp_path):
    _, out, ens = kernel_package
    res = run_offline_kernel(out, tiny_raw, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    # The kernel imported the packaged wheel, not this checkout.
    assert (tmp_path / "site" / "dfdc" / "inference" / "kernel.py").exists()

    order = pd.read_csv(tiny_raw / "sample_submission.csv")["filename"].tolist()
    bundle = load_bundle(out / "models", "cpu", ensemble=ens)
    assert sorted(m.kind.name for m in bundle.predictor.models) == ["frame", "sequence"]
    videos = sorted((tiny_raw / "test_videos").glob("*.mp4"))
    mine = make_submission(videos, order, bundle, tmp_path / "workspace.csv")
    assert (tmp_path / "submission.csv").read_bytes() == (tmp_path / "workspace.csv").read_bytes()
    assert len(mine) == len(order)
