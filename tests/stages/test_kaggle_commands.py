"""``dfdc kaggle``: the real Kaggle client against a recording fake of Kaggle's API.

Asserts what was sent (slugs, offline/GPU flags, sources, the uploaded bytes), that datasets are
created the first time and versioned after, that a kernel version can be submitted, and that the
key shows up nowhere but in the Authorization header.
"""

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from dfdc.cli import main
from dfdc.core.config import to_dict
from dfdc.kaggle.api import KaggleError, publish_dataset

KERNEL = "someone/dfdc-workspace-inference"
CODE, MODELS = "someone/dfdc-workspace-code", "someone/dfdc-workspace-models"


@pytest.fixture
def workspace(kernel_package, tmp_path, monkeypatch):
    """A working directory with a params.yaml pointing at the packaged kernel."""
    params, out, _ = kernel_package
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(params)))
    return str(path), out


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "dataset-metadata.json"
    }


def _as_kaggle_unpacks(files: dict[str, bytes]) -> dict[str, bytes]:
    """A dataset's files as they appear under /kaggle/input: each zip becomes a folder."""
    tree = {}
    for name, data in files.items():
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if not info.is_dir():
                        tree[f"{name[:-4]}/{info.filename}"] = zf.read(info)
        else:
            tree[name] = data
    return tree


def test_release_creates_datasets_and_pushes_an_offline_gpu_kernel(
    workspace, fake_kaggle, tmp_path, caplog, capsys
):
    params, out = workspace
    assert main(["kaggle", "release", "--params", params, "-m", "first"]) == 0

    # New datasets: a 404 status check, then uploads, then CreateDataset with the tokens.
    statuses = [
        (c.body["ownerSlug"], c.body["datasetSlug"]) for c in fake_kaggle.calls("GetDatasetStatus")
    ]
    assert sorted(set(statuses)) == [
        ("someone", "dfdc-workspace-code"),
        ("someone", "dfdc-workspace-models"),
    ]
    created = {
        f"{c.body['ownerSlug']}/{c.body['slug']}": c.body
        for c in fake_kaggle.calls("CreateDataset")
    }
    assert sorted(created) == [CODE, MODELS]
    for body in created.values():
        assert body["licenseName"] == "CC0-1.0" and body["isPrivate"] is True
        assert 6 <= len(body["title"]) <= 50
    # Every packaged file arrived byte for byte; the nested models tree went up as a zip
    # (the client skips sub-folders by default) that Kaggle unpacks back into the same tree.
    assert _as_kaggle_unpacks(fake_kaggle.dataset_files(CODE)) == _tree(out / "code")
    models = fake_kaggle.dataset_files(MODELS)
    assert {"kernel.zip", "kernel_seq.zip", "ensemble.json"} <= set(models)
    assert _as_kaggle_unpacks(models) == _tree(out / "models")

    (push,) = fake_kaggle.calls("SaveKernel")
    body = push.body
    assert body["slug"] == KERNEL
    assert body["enableInternet"] is False and body["enableGpu"] is True
    assert body["competitionDataSources"] == ["deepfake-detection-challenge"]
    assert sorted(body["datasetDataSources"]) == [CODE, MODELS]
    assert body["language"] == "python" and body["kernelType"] == "script"
    assert body["text"] == (out / "kernel" / "dfdc_inference.py").read_text()
    # Datasets exist before the kernel that attaches them is pushed.
    paths = [r.path for r in fake_kaggle.requests]
    assert max(i for i, p in enumerate(paths) if p.endswith("/CreateDataset")) < paths.index(
        push.path
    )

    record = json.loads(
        (tmp_path / "submissions" / "releases" / "dfdc-workspace-inference-v1.json").read_text()
    )
    assert record["kernel"]["version"] == 1 and record["kernel"]["ref"] == KERNEL
    assert [d["action"] for d in record["datasets"]] == ["created", "created"]

    # The key goes only into the Basic auth header of API calls.
    expected = base64.b64encode(b"someone:secret-key-123").decode()
    api_calls = [r for r in fake_kaggle.requests if r.path.startswith("/api/")]
    assert api_calls and all(r.headers["Authorization"] == f"Basic {expected}" for r in api_calls)
    printed = capsys.readouterr()
    for text in (caplog.text, printed.out, printed.err, json.dumps(record)):
        assert "secret-key-123" not in text and expected not in text
    assert "dfdc kaggle submit -k someone/dfdc-workspace-inference -v 1" in printed.out


def test_second_release_versions_the_datasets_and_submit_names_the_version(
    workspace, fake_kaggle, capsys
):
    params, _ = workspace
    assert main(["kaggle", "release", "--params", params]) == 0
    assert main(["kaggle", "release", "--params", params, "-m", "retrained"]) == 0
    versions = fake_kaggle.calls("CreateDatasetVersion")
    assert [(c.body["ownerSlug"], c.body["datasetSlug"]) for c in versions] == [
        ("someone", "dfdc-workspace-code"),
        ("someone", "dfdc-workspace-models"),
    ]
    assert all(c.body["body"]["versionNotes"] == "retrained" for c in versions)
    assert len(fake_kaggle.calls("CreateDataset")) == 2 and fake_kaggle.kernels[KERNEL] == 2

    argv = ["kaggle", "submit", "--params", params, "-k", KERNEL, "-v", "2", "-m", "B7 x3"]
    assert main(argv) == 0
    (sub,) = fake_kaggle.calls("CreateCodeSubmission")
    assert sub.body == {
        "competitionName": "deepfake-detection-challenge",
        "kernelOwner": "someone",
        "kernelSlug": "dfdc-workspace-inference",
        "kernelVersion": 2,
        "fileName": "submission.csv",
        "submissionDescription": "B7 x3",
    }
    capsys.readouterr()
    assert main(["kaggle", "submit", "--params", params, "-k", KERNEL, "-v", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "version 7 not found" in err


def test_push_before_its_datasets_exist_names_them(workspace, fake_kaggle, capsys):
    params, _ = workspace
    assert main(["kaggle", "push", "--params", params]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"unknown datasets: {CODE}, {MODELS}" in err


def test_push_refuses_a_kernel_with_internet(tmp_path, fake_kaggle, capsys):
    from dfdc.kaggle.api import push_kernel

    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "run.py").write_text("print(1)\n")
    meta = {"id": KERNEL, "title": "x" * 8, "code_file": "run.py", "language": "python"}
    (tmp_path / "k" / "kernel-metadata.json").write_text(json.dumps(meta))
    with pytest.raises(KaggleError, match="enable_internet is not false"):
        push_kernel(tmp_path / "k")
    assert fake_kaggle.requests == []


def test_placeholder_owner_is_refused_before_any_call(tmp_path, fake_kaggle):
    folder = tmp_path / "d"
    folder.mkdir()
    meta = {"id": "your-kaggle-username/some-data", "title": "Some data", "licenses": []}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))
    with pytest.raises(KaggleError, match=r"set package\.owner"):
        publish_dataset(folder)
    assert fake_kaggle.requests == []


def test_missing_credentials_are_one_line(tmp_path, monkeypatch, capsys):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["kaggle", "submit", "-k", KERNEL, "-v", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no Kaggle credentials" in err and "KAGGLE_KEY" in err


def test_kaggle_json_with_loose_permissions_is_used_and_warned_about(
    tmp_path, fake_kaggle, monkeypatch, capsys
):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    creds = home / ".kaggle" / "kaggle.json"
    creds.write_text(json.dumps({"username": "someone", "key": "file-key-456"}))
    creds.chmod(0o644)
    fake_kaggle.kernels[KERNEL] = 1
    assert main(["kaggle", "submit", "-k", KERNEL, "-v", "1"]) == 0
    printed = capsys.readouterr()
    assert "readable by other users; run: chmod 600" in printed.err
    (sub,) = fake_kaggle.calls("CreateCodeSubmission")
    expected = base64.b64encode(b"someone:file-key-456").decode()
    assert sub.headers["Authorization"] == f"Basic {expected}"
    assert "file-key-456" not in printed.err + printed.out


def test_download_unpacks_the_competition_archive(tmp_path, fake_kaggle):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("test_videos/a.mp4", b"video")
        zf.writestr("sample_submission.csv", "filename,label\na.mp4,0.5\n")
    fake_kaggle.files["some-comp.zip"] = buf.getvalue()
    out = tmp_path / "comp"
    assert main(["kaggle", "download", "-c", "some-comp", "-o", str(out)]) == 0
    assert (out / "test_videos" / "a.mp4").read_bytes() == b"video"
    # Unpacked beside the target and renamed into place: nothing half-done is left.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["comp"]
