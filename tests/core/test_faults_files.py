"""Fault matrix, files (docs/faults.md): a checkpoint is data, never code; the project's own
checkpoints load as data; an older one is converted on request; a write that fails is one
line naming the file and leaves nothing behind."""

from __future__ import annotations

import errno
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc.cli import main
from dfdc.core.config import ModelConfig, params_from_dict, redirect_outputs
from dfdc.core.errors import UserError
from dfdc.core.io import WriteError, atomic_path, save_figure, write_image, write_json
from dfdc.core.torch_files import (
    UnreadableFileError,
    UnsafeFileError,
    load_torch_file,
    save_torch_file,
)
from dfdc.kinds.checkpoint import (
    CheckpointError,
    read_checkpoint,
    read_resume,
    resolved_config,
    save_best,
    save_last,
)
from tests.conftest import ROOT, write_params


class Payload:
    """What a hostile checkpoint carries: unpickling it runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload_files(tmp: Path, marker: Path) -> dict[str, Path]:
    """The payload in a checkpoint's clothes: torch's zip format with the schema's keys, the
    legacy format, and a bare pickle named best.pt."""
    state = {"schema": 2, "kind": "frame", "fold": 0, "model": {}, "x": Payload(marker)}
    files = {"zip": tmp / "zip" / "best.pt", "legacy": tmp / "legacy" / "best.pt",
             "pickle": tmp / "pickle" / "best.pt"}  # fmt: skip
    for f in files.values():
        f.parent.mkdir()
    torch.save(state, files["zip"])
    torch.save(state, files["legacy"], _use_new_zipfile_serialization=False)
    files["pickle"].write_bytes(pickle.dumps(state))
    return files


def _one_line_naming(exc: BaseException, path: Path) -> str:
    text = str(exc)
    assert "\n" not in text and str(path) in text, text
    return text


@pytest.mark.parametrize("fmt", ["zip", "legacy", "pickle"])
def test_a_payload_checkpoint_is_refused_before_anything_in_it_runs(tmp_path, fmt):
    marker = tmp_path / "MARKER"
    path = _payload_files(tmp_path, marker)[fmt]
    with pytest.raises(UnsafeFileError) as exc:
        load_torch_file(path)
    assert "refused" in _one_line_naming(exc.value, path)
    with pytest.raises(UnsafeFileError) as exc:  # what dfdc predict/evaluate --models load
        read_checkpoint(path)
    _one_line_naming(exc.value, path)
    # A resume file in the models folder is refused too, never run nor silently overwritten.
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(UnsafeFileError):
        read_resume(path, "k", 2, 0, model, opt, sched, torch.amp.GradScaler("cpu"), "cpu")
    assert not marker.exists()
    # The file really is a payload: trusting it runs the command.
    if fmt == "pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


def test_dfdc_predict_refuses_a_payload_in_one_line(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    path = _payload_files(tmp_path, marker)["zip"]
    params = write_params(tmp_path / "params.yaml", tmp_path)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    code = main(["predict", str(video), "--models", str(path), "--params", str(params),
                 "--engine", "torch"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(path) in err[0] and "refused" in err[0], err
    assert not marker.exists()


def _tiny_fold(tmp: Path):
    """What fit saves, through the project's own save functions: a model, its optimiser, the
    loop's LambdaLR, a scaler, the resolved config and the metrics the loop records."""
    from dfdc.kinds.backbones import build_model
    from dfdc.training.loop import make_optimizer, make_scheduler

    params = params_from_dict(redirect_outputs({}, tmp))
    run = params.train
    model = build_model(ModelConfig(backbone="resnet10t", input_size=64))
    opt = make_optimizer(model, run)
    sched = make_scheduler(opt, run, 3)
    scaler = torch.amp.GradScaler("cpu")
    folds = pd.DataFrame({"name": ["a.mp4", "b.mp4"], "label": ["REAL", "FAKE"], "fold": [0, 1]})
    config = resolved_config(params, run, folds)
    metrics = {"video_logloss": 0.69, "video_auc": 0.5}
    key = "the fold's key"  # what config_hash gives; any string read_resume compares
    save_best(tmp / "best.pt", config, 0, 0, metrics, model)
    save_last(tmp / "last.pt", key, 0, model, opt, sched, scaler, metrics, 0,
              [{"epoch": 0, **metrics}])  # fmt: skip
    return params, run, model, opt, sched, scaler, key


def test_the_projects_own_checkpoints_load_as_data(tmp_path):
    _, run, model, opt, sched, scaler, key = _tiny_fold(tmp_path)
    ckpt = read_checkpoint(tmp_path / "best.pt")
    assert ckpt.kind == "frame" and ckpt.fold == 0 and ckpt.run == run
    assert torch.equal(ckpt.model["conv1.0.weight"], model.state_dict()["conv1.0.weight"])
    assert ckpt.metrics == {"video_logloss": 0.69, "video_auc": 0.5}
    resume = read_resume(tmp_path / "last.pt", key, max(run.epochs, 2), 0, model, opt, sched,
                         scaler, "cpu")  # fmt: skip
    assert resume is not None and resume.epoch == 1 and resume.history[0]["epoch"] == 0


def test_an_older_checkpoint_says_how_to_convert_it_and_then_loads(tmp_path, capsys):
    _tiny_fold(tmp_path)
    path = tmp_path / "best.pt"
    state = torch.load(path, weights_only=True)
    state["metrics"] = {k: np.float64(v) for k, v in state["metrics"].items()}  # numpy numbers
    torch.save(state, path)
    with pytest.raises(UnsafeFileError) as exc:
        read_checkpoint(path)
    text = _one_line_naming(exc.value, path)
    assert "numpy" in text and f"dfdc convert-checkpoint {path}" in text
    assert main(["convert-checkpoint", str(path)]) == 0
    assert str(path) in capsys.readouterr().out
    ckpt = read_checkpoint(path)
    assert ckpt.metrics == {"video_logloss": 0.69, "video_auc": 0.5}
    assert all(type(v) is float for v in ckpt.metrics.values())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "half"])
def test_an_unreadable_checkpoint_is_one_line(tmp_path, content):
    _tiny_fold(tmp_path)
    path = tmp_path / "best.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "half" else content)
    with pytest.raises(UnreadableFileError) as exc:
        load_torch_file(path)
    _one_line_naming(exc.value, path)
    with pytest.raises(CheckpointError, match=r"best\.pt: not a readable checkpoint") as exc:
        read_checkpoint(path)
    _one_line_naming(exc.value, path)


def test_torch_load_is_called_in_one_place_only():
    """Every load goes through load_torch_file (weights_only=True): no other torch.load in the
    package, the benchmarks, the scripts or the notebooks."""
    allowed = ROOT / "src" / "dfdc" / "core" / "torch_files.py"
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for folder in ("src", "benchmarks", "scripts", "notebooks")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p != allowed
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\btorch\.load\(|\bpickle\.loads?\(", line)
    ]
    assert not found, found


def _no_space(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import cv2
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    out = tmp_path / "out"
    image = np.zeros((8, 8, 3), np.uint8)
    monkeypatch.setattr(Path, "write_bytes", _no_space)
    with pytest.raises(WriteError) as exc:
        write_image(image, out / "a.png")
    assert "No space left" in _one_line_naming(exc.value, out / "a.png")
    monkeypatch.undo()
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: (False, None))  # as imwrite's False
    with pytest.raises(WriteError) as exc:
        write_image(image, out / "b.png")
    _one_line_naming(exc.value, out / "b.png")
    monkeypatch.setattr(Figure, "savefig", _no_space)
    fig = plt.figure()
    with pytest.raises(WriteError) as exc:
        save_figure(fig, out / "c.png")
    plt.close(fig)
    _one_line_naming(exc.value, out / "c.png")
    monkeypatch.setattr(Path, "write_text", _no_space)
    with pytest.raises(WriteError):
        write_json({"a": 1}, out / "d.json")
    with pytest.raises(WriteError), atomic_path(out / "e.pt") as tmp:
        torch.save({}, tmp)
        raise OSError(errno.EIO, "Input/output error")

    def torch_full(*_a, **_k):  # how torch's zip writer reports a full disk
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", torch_full)
    with pytest.raises(WriteError) as exc:
        save_torch_file({"a": torch.zeros(2)}, out / "f.pt")
    assert "file write failed" in _one_line_naming(exc.value, out / "f.pt")
    # Nothing half-written, and no temporary file left behind.
    assert sorted(p.name for p in out.iterdir()) == []
    assert issubclass(WriteError, UserError) and not issubclass(WriteError, OSError)


def test_checked_writes_write(tmp_path):
    import cv2
    import matplotlib.pyplot as plt

    image = np.zeros((8, 12, 3), np.uint8)
    image[..., 0] = 255  # red in RGB
    write_image(image, tmp_path / "a.png")
    back = cv2.imread(str(tmp_path / "a.png"))
    assert back.shape == (8, 12, 3) and back[0, 0].tolist() == [0, 0, 255]  # BGR on disk
    fig = plt.figure()
    save_figure(fig, tmp_path / "b.png", dpi=20)
    plt.close(fig)
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
