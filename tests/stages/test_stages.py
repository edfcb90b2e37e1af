"""The stages end to end on the tiny generated sample: the CLI, the notebooks, the errors."""

import dataclasses
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from dfdc.cli import main
from dfdc.core.config import load_params, redirect_outputs
from dfdc.core.notebooks import run_notebook
from tests.conftest import ROOT, SAMPLE_SEED, write_params
from tests.offline import remote_loads


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """``dfdc data`` then ``dfdc faces`` on the tiny sample, in a scratch folder."""
    tmp = tmp_path_factory.mktemp("stage")
    params = write_params(tmp / "params.yaml", tmp)
    assert main(["data", "--params", str(params)]) == 0
    return tmp, params


def _errors(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    return [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _images(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_data_stage_writes_layout_and_index(staged):
    tmp, _ = staged
    raw = tmp / "raw"
    assert json.loads((raw / "SOURCE.json").read_text())["source"] == "sample"
    assert (raw / "sample_submission.csv").exists() and (raw / "test_labels.csv").exists()
    index = pd.read_parquet(tmp / "videos.parquet")
    assert len(index) == 8
    assert index["readable"].all()
    contract = ["name", "path", "label", "original", "part", "split", "width", "height", "rotation"]
    contract += [
        "fps",
        "frame_count",
        "duration",
        "codec",
        "has_audio",
        "bytes",
        "readable",
        "reason",
    ]
    assert set(contract) <= set(index.columns)
    train = index[index["split"] == "train"]
    assert sorted(train["part"].unique()) == ["dfdc_train_part_0", "dfdc_train_part_1"]
    portrait = train[train["part"] == "dfdc_train_part_1"]
    assert (portrait["height"] > portrait["width"]).all()


def test_eda_notebook_runs_in_smoke_mode(staged):
    tmp, params = staged
    out = tmp / "00_eda.ipynb"
    run_notebook(ROOT / "notebooks/00_eda.py", out, {"params_path": str(params), "smoke": True})
    assert not _errors(out)
    assert _images(out) >= 4  # balance, properties, frame grid, difference image
    assert out.with_suffix(".html").stat().st_size > 10_000
    assert remote_loads(out.with_suffix(".html").read_text()) == []  # opens offline


def test_faces_notebook_runs_in_smoke_mode(staged):
    tmp, params = staged
    out = tmp / "10_extract_faces.ipynb"
    run_notebook(
        ROOT / "notebooks/10_extract_faces.py", out, {"params_path": str(params), "smoke": True}
    )
    assert not _errors(out)
    assert _images(out) >= 4
    status = pd.read_parquet(tmp / "faces_status.parquet")
    assert len(status) == 6 and (status["status"] == "ok").all()


def test_failing_notebook_is_one_line(tmp_path, staged):
    _, params = staged
    nb = tmp_path / "broken.py"
    nb.write_text(
        '# %% tags=["parameters"]\nparams_path = ""\n\n# %%\nraise ValueError("bad thing")\n'
    )
    with pytest.raises(Exception) as err:
        run_notebook(nb, tmp_path / "broken.ipynb", {"params_path": str(params)}, html=False)
    assert "ValueError: bad thing" in str(err.value) and "\n" not in str(err.value)


def test_local_source_missing_path_is_one_line(tmp_path, capsys):
    params = write_params(
        tmp_path / "params.yaml",
        tmp_path,
        data={"source": "local", "local_path": str(tmp_path / "nope")},
    )
    assert main(["data", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.local_path does not exist" in err and "\n" not in err


def test_kaggle_source_without_credentials_says_how_to_set_them(tmp_path, capsys, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    params = write_params(tmp_path / "params.yaml", tmp_path, data={"source": "kaggle"})
    assert main(["data", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no Kaggle credentials" in err and "KAGGLE_USERNAME" in err and "\n" not in err


def test_folds_and_train_notebook_run_in_smoke_mode(staged):
    tmp, params = staged
    assert main(["faces", "--params", str(params)]) == 0  # resumes: skips what is done
    assert main(["folds", "--params", str(params)]) == 0
    folds = pd.read_parquet(tmp / "folds.parquet")
    assert sorted(folds["fold"].unique()) == [0, 1] and (folds["group_kind"] == "part").all()
    out = tmp / "20_train_fold1.ipynb"
    run_notebook(
        ROOT / "notebooks/20_train_fold.py",
        out,
        {"params_path": str(params), "fold": 1, "smoke": True},
    )
    assert not _errors(out)
    assert _images(out) >= 2  # curves, ROC/reliability
    assert (tmp / "models" / "baseline" / "fold1" / "best.pt").exists()


@pytest.mark.slow
def test_training_learns_on_the_generated_sample(tmp_path):
    """The default sample, faces, folds and training (4 folds): out-of-fold video log loss
    well below a constant 0.5 (0.693) and below the constant prior (2 fakes in 3: 0.637)."""
    from dfdc.core.metrics import binary_metrics
    from dfdc.training.loop import fit

    defaults = load_params(ROOT / "params.yaml")
    params_path = tmp_path / "params.yaml"
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = redirect_outputs(raw, tmp_path, keep=("train.model.weights_dir",))
    if SAMPLE_SEED:
        raw["data"]["sample"]["seed"] = int(SAMPLE_SEED)
    params_path.write_text(yaml.safe_dump(raw))
    for command in ("data", "faces", "folds"):
        assert main([command, "--params", str(params_path)]) == 0
    params = load_params(params_path)
    assert params.train == defaults.train  # the shipped frame run, as is
    oof = pd.concat(
        [pd.read_parquet(fit(params, k).out_dir / "oof.parquet") for k in params.cv.folds]
    )
    assert len(oof) == 24
    m = binary_metrics(oof["label"], oof["video_prob"])
    print("out-of-fold", m)
    assert m["logloss"] < 0.55
    assert m["auc"] > 0.8

    # The temporal model on the same folds, embedding with each fold's frame model; the
    # sample's fakes carry per-frame jitter. Then the ensemble's side-by-side table.
    seq = params.sequence
    # The shipped settings, only the embedding cache moved into tmp_path.
    moved = dataclasses.replace(
        defaults.sequence,
        sequence=dataclasses.replace(
            defaults.sequence.sequence, cache_dir=str(tmp_path / "embeddings")
        ),
    )
    assert seq == moved
    seq_oof = pd.concat(
        [pd.read_parquet(fit(params, k, run=seq).out_dir / "oof.parquet") for k in params.cv.folds]
    )
    assert len(seq_oof) == 24
    s = binary_metrics(seq_oof["label"], seq_oof["video_prob"])
    print("sequence out-of-fold", s)
    assert s["logloss"] < 0.693

    from dfdc.inference.fit import fit_ensemble, load_oof

    report = fit_ensemble(load_oof(tmp_path / "models", ("baseline", "lstm")), params.ensemble)
    table = report.table.set_index("ensemble")["logloss"]
    print(table.round(3).to_string())
    assert table["baseline alone, no calibration"] == pytest.approx(m["logloss"], abs=0.05)
    assert "blend of baseline + lstm: fitted, scored nested by fold" in table


def test_the_registry_entry_names_the_files_the_ensemble_read(tmp_path):
    """Not dvc.lock (``dvc repro`` is still writing it while the stage runs): the index, and
    each run's fold checkpoints and out-of-fold tables, by content."""
    import hashlib

    from dfdc.core.config import params_from_dict, redirect_outputs
    from dfdc.stages.ensemble import _inputs

    params = params_from_dict(redirect_outputs({"ensemble": {"runs": ["a"]}}, tmp_path))
    models = Path(params.base.models_dir)
    read = ["a/fold0/best.pt", "a/fold0/oof.parquet", "a/fold1/best.pt", "a/fold1/oof_c40.parquet"]
    for i, rel in enumerate([*read, "a/fold0/last.pt", "b/fold0/best.pt"]):
        (models / rel).parent.mkdir(parents=True, exist_ok=True)
        (models / rel).write_bytes(bytes([i]))
    Path(params.data.index_path).write_bytes(b"index")
    (tmp_path / "dvc.lock").write_text("being written")
    got = _inputs(params)
    want = [Path(params.data.index_path), *(models / r for r in read)]
    assert got == {p.as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in want}
