"""Fault matrix, pages (docs/faults.md): a report image that cannot be written (disk full,
an encoder that fails) ends ``dfdc predict --report`` and ``dfdc evaluate --report`` with one
line naming the file and a non-zero exit, and leaves no page pointing at missing images."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest

from dfdc.cli import main
from dfdc.core.config import to_dict


def _no_space(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def _fail(monkeypatch: pytest.MonkeyPatch, how: str) -> str:
    """Make report writes fail ``how``; the image whose write fails first."""
    import cv2
    from matplotlib.figure import Figure

    if how == "encoder":  # what cv2.imwrite's False meant: nothing written
        real = cv2.imencode

        def encode(ext, *a, **k):
            return (False, None) if ext == ".png" else real(ext, *a, **k)

        monkeypatch.setattr(cv2, "imencode", encode)
        return "frames.png"
    if how == "disk full":
        real_write = Path.write_bytes
        monkeypatch.setattr(
            Path, "write_bytes",
            lambda self, data: _no_space() if ".png." in self.name else real_write(self, data),
        )  # fmt: skip
        return "frames.png"
    monkeypatch.setattr(Figure, "savefig", _no_space)  # a matplotlib figure's write
    return "timeline.png"


def _dangling(folder: Path) -> list[str]:
    """Images the pages under ``folder`` show that are not there."""
    return [
        f"{page}: {src}"
        for page in folder.rglob("*.html")
        for src in re.findall(r'<img src="([^"]+)"', page.read_text())
        if not src.startswith("data:") and not (page.parent / src).exists()
    ]


@pytest.fixture(scope="module")
def params_file(kernel_package, tmp_path_factory) -> Path:
    params, _, _ = kernel_package
    path = tmp_path_factory.mktemp("faults") / "params.yaml"
    path.write_text(json.dumps(to_dict(params)))
    return path


def test_a_failed_report_write_is_one_line_and_leaves_no_page(
    params_file, tiny_raw, tmp_path, capsys, monkeypatch
):
    video = sorted((tiny_raw / "test_videos").glob("*.mp4"))[0]
    rep = tmp_path / "rep"
    args = ["predict", str(video), "--params", str(params_file), "--report", str(rep),
            "--engine", "torch"]  # fmt: skip
    assert main(args) == 0
    page = rep / video.stem / "index.html"
    assert page.exists() and not _dangling(rep)
    for how in ("encoder", "disk full", "figure"):
        capsys.readouterr()
        with monkeypatch.context() as m:
            image = _fail(m, how)
            code = main(args)
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert code != 0 and len(errors) == 1 and "Traceback" not in err, (how, err)
        assert str(rep / video.stem / image) in errors[0], (how, errors)
        # No page at all (the earlier run's went first), so none that points at nothing.
        assert not page.exists() and not (page.parent / "report.json").exists(), how
        assert not _dangling(rep)
    assert main(args) == 0 and page.exists() and not _dangling(rep)  # and it heals


def test_a_failed_evaluation_page_write_leaves_no_index(params_file, tiny_raw, tmp_path, capsys,
                                                         monkeypatch):  # fmt: skip
    out = tmp_path / "eval"
    args = ["evaluate", str(tiny_raw / "train"), "--params", str(params_file), "--report",
            str(out), "--engine", "torch"]  # fmt: skip
    _fail(monkeypatch, "figure")
    code = main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code != 0 and len(errors) == 1 and str(out / "curves.png") in errors[0], err
    assert not (out / "index.html").exists() and not (out / "index.json").exists()
    assert not _dangling(out)
