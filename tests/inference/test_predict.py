"""``dfdc predict`` and the inference path it shares with training."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc.cli import main
from dfdc.crops.datasets import CropDataset, crop_items
from dfdc.faces.store import decode_reduction
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.predict import load_bundle
from dfdc.training.loop import fit
from tests.conftest import tiny_params, write_params


@pytest.fixture(scope="module")
def trained(tiny_stage):
    params = tiny_params(tiny_stage, run="predict", epochs=1)
    result = fit(params, 0, max_batches=1)
    return params, result.out_dir


def test_inference_crops_match_training_crops(tiny_stage, trained):
    """A video scored by the predictor and the same video's stage crops through the training
    dataset give the same frame scores: one path, no drift."""
    params, out = trained
    predictor = load_bundle("unused", "cpu", models=out).predictor
    (model,) = predictor.models
    faces = pd.read_parquet(tiny_stage / "faces.parquet")
    index = pd.read_parquet(tiny_stage / "videos.parquet").set_index("name")
    # A real video: the stage crops a fake with its original's boxes, which inference cannot
    # know, so only a real is cropped identically by both paths.
    video = faces.loc[faces["video"].map(index["label"]) == "REAL", "video"].iloc[0]
    pred = predictor.predict_video(index.loc[video, "path"])
    assert pred.status == "ok"
    items = crop_items(faces, {video: "FAKE"}, None)
    ds = CropDataset(
        items, model.transform, reduce=decode_reduction(params.faces.crop_size, model.input_size)
    )
    with torch.inference_mode():
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        ref = torch.sigmoid(model.model(x).squeeze(1)).numpy()
    assert pred.frames == [it.frame for it in items]
    assert np.allclose(pred.frame_probs[model.name], ref, atol=1e-5)
    assert pred.prob == pytest.approx(float(ref.mean()), abs=1e-5)


def test_predict_cli_scores_good_files_and_reports_bad_ones(tmp_path, trained, shared_dfdc, capsys):
    _, out = trained
    params_path = write_params(tmp_path / "params.yaml", tmp_path)
    good = shared_dfdc / "dfdc_train_part_0" / "brtujopkby.mp4"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 5000)
    missing = tmp_path / "missing.mp4"
    code = main(
        [
            "predict",
            str(corrupt),
            str(good),
            str(missing),
            "--params",
            str(params_path),
            "--models",
            str(out),
            "--image",
            str(tmp_path / "crops.png"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(good))
    assert 0 < float(lines[0].split("\t")[1]) < 1
    errors = [line for line in captured.err.splitlines() if line.startswith("dfdc predict: error")]
    assert len(errors) == 2
    assert any(str(corrupt) in e and "not a readable video" in e for e in errors)
    assert any(str(missing) in e and "file not found" in e for e in errors)
    assert (tmp_path / "crops_brtujopkby.png").stat().st_size > 10_000


def test_predict_json_has_frame_and_face_scores(tmp_path, trained, tiny_raw, capsys):
    _, out = trained
    params_path = write_params(tmp_path / "params.yaml", tmp_path)
    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    assert (
        main(["predict", str(video), "--json", "--params", str(params_path), "--models", str(out)])
        == 0
    )
    captured = capsys.readouterr()
    (record,) = json.loads(captured.out)
    assert record["video"] == video.name and record["status"] == "ok"
    # The models say what they are: trained on the generated sample, not on real deepfakes.
    assert "trained on: the generated sample" in captured.err
    assert "do not detect real deepfakes" in captured.err
    (scores,) = record["frame_probs"].values()
    assert len(scores) == len(record["frames"]) == len(record["tracks"]) > 0
    assert record["prob"] == pytest.approx(float(np.mean(scores)), abs=1e-5)


def test_no_models_is_one_line(tmp_path, capsys):
    params_path = write_params(tmp_path / "params.yaml", tmp_path)
    assert main(["predict", "x.mp4", "--params", str(params_path), "--models", str(tmp_path)]) == 2
    assert "no best.pt found" in capsys.readouterr().err


def test_an_ensemble_fitted_for_fewer_frames_samples_that_many(tiny_stage, trained):
    """The ensemble's ``frames`` (what its calibration was fitted for) is how many frames
    the predictor samples a video; 0 keeps the faces settings' count."""
    params, _ = trained
    index = pd.read_parquet(tiny_stage / "videos.parquet")
    path = index.loc[index["label"] == "REAL", "path"].iloc[0]
    counts = {}
    for n in (0, 3):
        ens = Ensemble(["predict"], [1.0], frames=n)
        bundle = load_bundle(params.base.models_dir, "cpu", ensemble=ens)
        assert bundle.predictor.faces_cfg.frames == (n or params.faces.frames)
        pred = bundle.predictor.predict_video(path)
        assert pred.status == "ok"
        counts[n] = len(set(pred.frames))
    assert counts[3] == 3 < counts[0]
