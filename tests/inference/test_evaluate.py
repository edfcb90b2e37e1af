"""``dfdc evaluate``: labelled folders in any layout, scored with the fitted ensemble, the
JSON contract, unreadable files counted, and the real shared sets."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from dfdc.cli import main
from dfdc.core.config import to_dict
from dfdc.core.metrics import binary_metrics
from tests.conftest import SHARED

KEYS = {"auc", "logloss", "accuracy", "eer", "ap", "n"}


@pytest.fixture(scope="module")
def params_file(kernel_package, tmp_path_factory):
    params, _, _ = kernel_package
    path = tmp_path_factory.mktemp("evaluate") / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(params)))
    return path


def test_a_generated_set_with_known_labels(params_file, tiny_raw, tmp_path, capsys):
    """The tiny sample's training parts (DFDC layout, labels known) plus one broken file the
    metadata lists: every readable video scored, the broken one a line and a count."""
    root = tmp_path / "set"
    shutil.copytree(tiny_raw / "train", root)
    part = sorted(root.iterdir())[0]
    meta = json.loads((part / "metadata.json").read_text())
    meta["broken.mp4"] = {"label": "FAKE", "split": "train"}
    (part / "metadata.json").write_text(json.dumps(meta))
    (part / "broken.mp4").write_bytes(b"\x00" * 100)

    # Exit 1: a labelled video went unscored (the rule dfdc predict shares: cli.exit_status).
    assert main(["evaluate", str(root), "--params", str(params_file), "--json"]) == 1
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) >= KEYS and summary["n"] == 6 and summary["failed"] == 1
    assert "broken.mp4" in err and err.count("error:") == 1
    assert set(summary["by"]["dataset"]) == {"dfdc"}
    assert set(summary["by"]["method"]) == {"faceswap", "selfblend", "original"}
    for m in summary["by"]["method"].values():
        assert set(m) >= KEYS
    assert 0 <= summary["auc"] <= 1 and summary["logloss"] > 0
    assert summary["trained_on"].startswith("trained on: the generated sample")

    # The table form says the same numbers.
    assert main(["evaluate", str(root), "--params", str(params_file)]) == 1
    text = capsys.readouterr().out
    assert "6 videos scored, 1 unreadable" in text and "faceswap" in text
    assert "models trained on: the generated sample" in text


def test_not_a_folder_is_one_line(params_file, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope"), "--params", str(params_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("not a folder") and "\n" not in err


@pytest.mark.shared
def test_the_shared_ffpp_clips_by_method(params_file, capsys):
    """Real FF++ c23 clips (DFDC-style metadata with a method per fake): per-method rows."""
    assert main(["evaluate", str(SHARED / "ffpp_c23"), "--params", str(params_file), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 7 and summary["failed"] == 0
    assert {"Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"} <= set(summary["by"]["method"])
    # Per method: that method's fakes against the set's reals.
    assert summary["by"]["method"]["Deepfakes"]["n"] == 1 + 3


def test_metrics_have_eer_and_ap():
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert m["eer"] == pytest.approx(0.5) and m["ap"] == pytest.approx(5 / 6)
    perfect = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect["eer"] == 0 and perfect["ap"] == 1 and perfect["auc"] == 1
