"""``data.source: kaggle`` against a fake Kaggle server on 127.0.0.1: the real SDK code path."""

import io
import json
import zipfile

import pandas as pd

from dfdc.cli import main
from tests.conftest import write_params


def _competition_zip(tiny_raw) -> bytes:
    """The competition archive as Kaggle shipped it: train_sample_videos/, test_videos/, csv."""
    buf = io.BytesIO()
    part = tiny_raw / "train" / "dfdc_train_part_0"
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(part.iterdir()):
            zf.write(f, f"train_sample_videos/{f.name}")
        for f in sorted((tiny_raw / "test_videos").iterdir()):
            zf.write(f, f"test_videos/{f.name}")
        zf.write(tiny_raw / "sample_submission.csv", "sample_submission.csv")
    return buf.getvalue()


def test_kaggle_source_downloads_into_dfdc_layout(tmp_path, tiny_raw, fake_kaggle, caplog):
    fake_kaggle.files["deepfake-detection-challenge.zip"] = _competition_zip(tiny_raw)
    params = write_params(tmp_path / "params.yaml", tmp_path, data={"source": "kaggle"})
    assert main(["data", "--params", str(params)]) == 0

    raw = tmp_path / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "SOURCE.json",
        "sample_submission.csv",
        "test_videos",
        "train",
    ]
    assert (raw / "train" / "train_sample_videos" / "metadata.json").exists()
    index = pd.read_parquet(tmp_path / "videos.parquet")
    assert set(index.loc[index["split"] == "train", "part"]) == {"train_sample_videos"}
    assert (index["split"] == "test").sum() == 2 and index["readable"].all()

    call = fake_kaggle.requests[0]
    assert call.method == "POST"
    assert call.path == "/api/v1/competitions.CompetitionApiService/DownloadDataFiles"
    assert call.body == {"competitionName": "deepfake-detection-challenge"}
    assert call.headers.get("Authorization", "").startswith("Basic ")
    # The key is sent to the server, never written to the logs or the data folder.
    assert "secret-key-123" not in caplog.text
    assert "secret-key-123" not in json.dumps(json.loads((raw / "SOURCE.json").read_text()))


def test_kaggle_error_is_one_line(tmp_path, fake_kaggle, capsys):
    params = write_params(tmp_path / "params.yaml", tmp_path, data={"source": "kaggle"})
    assert main(["data", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Kaggle" in err


def test_an_unreachable_kaggle_is_one_line_and_leaves_no_folder(
    tmp_path, fake_kaggle, capsys, monkeypatch
):
    """With ``KAGGLE_API_TOKEN`` the client checks the token with Kaggle's server before any
    download; a server it cannot reach (no network) was a 90-line traceback. Now it is one
    line, and no empty ``*.download`` folder is left behind."""
    import socket

    from kagglesdk import kaggle_env

    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, closed)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "some-token")
    params = write_params(tmp_path / "params.yaml", tmp_path, data={"source": "kaggle"})
    assert main(["data", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Kaggle" in err and "Traceback" not in err, err
    assert not list(tmp_path.rglob("*.download"))
