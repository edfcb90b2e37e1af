"""An edit costs what it changes: for every module of ``src/dfdc``, a comment changes no
stage's code fingerprint and a real code line changes exactly those of the stages whose code
holds the module (in-process, on a temporary copy: ``scripts/code_matrix.py``); and once with
real DVC, on a temporary git + DVC repository wired like ``dvc.yaml``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfdc.core.fingerprint import normalized_digest
from dfdc.stages import STAGES
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def matrix():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import code_matrix
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return list(code_matrix.edit_matrix(ROOT))


def test_a_fingerprint_ignores_comments_docstrings_and_layout_only():
    plain = "def f(a, b):\n    return a + b\n\n\nx = f(1, 2)\n"
    written = (
        '"""Module."""\n\n\ndef f(a,\n      b):  # adds\n    """Doc."""\n    return (a\n'
        '            + b)\nx = f(1,  2)\n"""x: an attribute docstring."""\n'
    )
    assert normalized_digest(written) == normalized_digest(plain)
    for changed in (plain.replace("a + b", "b + a"), plain + "y = 0\n", plain.replace("2", "3")):
        assert normalized_digest(changed) != normalized_digest(plain)


def test_the_matrix_covers_every_module(matrix):
    modules = {
        p.relative_to(ROOT / "src" / "dfdc").as_posix() for p in ROOT.glob("src/dfdc/**/*.py")
    }
    assert {r.module for r in matrix} == modules and len(modules) > 90


def test_a_comment_in_any_module_changes_no_stage(matrix):
    changed = {r.module: sorted(r.comment) for r in matrix if r.comment}
    assert not changed, f"a comment changes these stages' code: {changed}"


def test_a_code_line_changes_exactly_the_stages_that_run_the_module(matrix):
    wrong = {r.module: (sorted(r.code), sorted(r.holds)) for r in matrix if r.code != r.holds}
    assert not wrong, f"(changed, expected) by module: {wrong}"
    # Every module is some stage's code (the kernel's wheel ships them all) ...
    assert all(r.code for r in matrix)
    by = {r.module: r.code for r in matrix}
    # ... and the narrowings hold: the CLI is the kernel's only, drawing code is not the
    # compute stages', the sequence kind is not the frame fold's.
    assert by["cli.py"] == {"package"}
    assert by["faces/plots.py"] == {"faces", "package"}
    assert "train" not in by["kinds/sequence.py"] and "train" in by["kinds/frame.py"]
    assert not {"faces", "train", "train_sequence"} & by["reports/video_report.py"]


def _dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    bindir = str(Path(sys.executable).parent)  # dfdc and dvc of this environment
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([\w@]+)'", output))


@pytest.mark.slow  # three dvc repro runs of 14 stand-in stages: about a minute on 2 cores
def test_dvc_reruns_only_the_code_stage_after_a_comment(tmp_path):
    """The project's code stage and each stage's code deps, with stand-in commands (each copies
    its fingerprint file): a comment in core/config.py, then ``dvc repro``, reruns the code
    stage alone and leaves ``dvc status`` clean; a code line in faces/plots.py reruns faces
    and package only."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "src" / "dfdc", repo / "src" / "dfdc",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(ROOT / "notebooks", repo / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))  # fmt: skip
    project = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stages = {"code": project["code"]}
    for name in STAGES:
        spec = project[name].get("do", project[name])
        deps = [d for d in spec["deps"] if isinstance(d, str) and d.startswith("code/")]
        stages[name] = {
            "cmd": f"mkdir -p out && cp {' '.join(deps)} out/{name}.txt",
            "deps": deps,
            "outs": [f"out/{name}.txt"],
        }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "init", "-q")
    assert _ran(_dvc(repo, "repro")) == {"code", *STAGES}
    assert json.loads(_dvc(repo, "status", "--json")) == {}

    config = repo / "src" / "dfdc" / "core" / "config.py"
    config.write_text(config.read_text() + "\n# a comment only\n")
    assert set(json.loads(_dvc(repo, "status", "--json"))) == {"code"}
    code_before = {p.name: p.read_bytes() for p in (repo / "code").iterdir()}
    assert _ran(_dvc(repo, "repro")) == {"code"}
    assert {p.name: p.read_bytes() for p in (repo / "code").iterdir()} == code_before
    assert json.loads(_dvc(repo, "status", "--json")) == {}

    plots = repo / "src" / "dfdc" / "faces" / "plots.py"
    plots.write_text(plots.read_text() + "\n_x = 1\n")
    assert _ran(_dvc(repo, "repro")) == {"code", "faces", "package"}
    assert json.loads(_dvc(repo, "status", "--json")) == {}
