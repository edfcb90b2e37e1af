"""What a DVC user opens to compare runs stays readable: ``dvc metrics show`` in 120 columns,
the documented ``dvc exp show`` form (``make exps``) in 160 after two experiments, and the
pipeline's picture in docs/pipeline.md equal to ``dvc dag --md``.

The tables are measured in a scratch git + DVC repository that has the project's
``params.yaml`` and a ``dvc.yaml`` of the project's stages as DVC resolves them (their params
and metrics; no data), each command replaced by a script that draws the stage's headline
metrics from params.yaml and writes them through the functions the stages use
(:mod:`dfdc.core.headline`). The dependencies' columns, which ``make exps`` drops, are checked
against the real dvc.yaml's.
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

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DVC = Path(sys.executable).with_name("dvc")
METRICS_WIDTH, EXPS_WIDTH = 120, 160

# The scratch repo's stage command: outputs are digests of params.yaml, the headline metrics
# are numbers drawn from it, written by the stages' own headline functions.
STAGE_SCRIPT = """
import hashlib, sys
from pathlib import Path
import yaml
from dfdc.core.headline import (cv_headline, eval_headline, robustness_headline,
                                submission_headline, write_headline)

stage, text = sys.argv[1], Path("params.yaml").read_text()
params = yaml.safe_load(text)
digest = hashlib.sha256((stage + text).encode()).hexdigest()
draw = [int(digest[i : i + 8], 16) / 16**8 for i in range(0, 40, 8)]
if stage == "ensemble":
    cfg = params["ensemble"]
    write_headline(cv_headline({"logloss": draw[0], "auc": draw[1]}), cfg["metrics_path"])
    test = {"available": True, "logloss": draw[2], "auc": draw[3]}
    write_headline(submission_headline(test), cfg["test_metrics_path"])
elif stage == "evaluate":
    write_headline(eval_headline({"logloss": 3 * draw[0]}), params["evaluate"]["metrics_path"])
elif stage == "robustness":
    levels = {"4": {"logloss": 10 * draw[0], "n": 2}, "8": {"logloss": draw[1], "n": 2}}
    report = {"distortions": {"blur": {"levels": levels}}}
    write_headline(robustness_headline(report), params["robustness"]["metrics_path"])
"""


def _run(cmd: list[str] | str, cwd: Path, columns: int = 200) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(SRC),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str)
    )
    assert done.returncode == 0, f"{cmd}: {done.stderr[-3000:]}"
    return done.stdout


def _resolved_stages() -> list[dict]:
    """The project's stages as DVC resolves dvc.yaml (foreach expanded)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return [
            {
                "name": s.addressing,
                "params": [p for d in s.deps if isinstance(d, ParamsDependency) for p in d.params],
                "deps": [d.def_path for d in s.deps if not isinstance(d, ParamsDependency)],
                "metrics": [o.def_path for o in s.outs if o.metric],
            }
            for s in repo.index.stages
        ]


@pytest.fixture(scope="module")
def stages() -> list[dict]:
    return _resolved_stages()


@pytest.fixture(scope="module")
def scratch(stages, tmp_path_factory) -> Path:
    """The scratch repo after ``dvc repro``, committed: the baseline."""
    repo = tmp_path_factory.mktemp("views")
    shutil.copy2(ROOT / "params.yaml", repo / "params.yaml")
    (repo / "stage.py").write_text(STAGE_SCRIPT)
    # The stages that write metrics, and one fold (what the experiments change): exp show's
    # params columns are all of params.yaml whatever the stages declare.
    dvc_yaml = {
        s["name"].replace("@", "_"): {
            "cmd": f"{sys.executable} stage.py {s['name']}",
            "params": s["params"],
            **({"metrics": [{m: {"cache": False}} for m in s["metrics"]]} if s["metrics"] else {}),
        }
        for s in stages
        if s["metrics"] or s["name"] == "train@0"
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": dvc_yaml}, sort_keys=False))
    _run(["git", "init", "-q"], repo)
    _run([str(DVC), "init", "-q"], repo)
    _run([str(DVC), "config", "core.autostage", "true"], repo)
    _run([str(DVC), "repro", "-q"], repo)
    _run("git add -A && git commit -qm baseline", repo)
    return repo


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_metrics_show_is_the_headlines_in_120_columns(stages, scratch):
    repo = scratch
    declared = {m for s in stages for m in s["metrics"]}
    assert declared == {
        "metrics/headline/cv.json",
        "metrics/headline/test.json",
        "metrics/headline/eval.json",
        "metrics/headline/robustness.json",
    }
    shown = json.loads(_run([str(DVC), "metrics", "show", "--json"], repo))
    files = next(iter(shown.values()))["data"]
    assert set(files) == declared  # no detail file, no dvclive file among them
    keys = [k for f in files.values() for k in f["data"]]
    assert len(keys) == len(set(keys)), "a key in two headline files: dvc exp show prefixes it"
    table = _run([str(DVC), "metrics", "show"], repo)
    assert len(table.splitlines()) == 1 + len(declared)
    assert set(table.splitlines()[0].split()) == {"Path", *keys}
    assert _widest(table) <= METRICS_WIDTH, table


def _exps_command() -> str:
    """The command ``make exps`` runs (the documented form), read from the Makefile."""
    out = _run(["make", "-s", "-n", "exps"], ROOT)
    return out.strip().splitlines()[-1]


def test_make_exps_shows_two_experiments_in_160_columns(scratch):
    repo = scratch
    _run([str(DVC), "exp", "run", "-q", "-S", "train.method=sbi"], repo)
    _run([str(DVC), "exp", "run", "-q", "-S", "ensemble.rule=confident"], repo)
    cmd = _exps_command()
    assert cmd.startswith("dvc exp show"), cmd
    table = _run(cmd.replace("dvc", str(DVC), 1), repo, columns=EXPS_WIDTH)
    assert _widest(table) <= EXPS_WIDTH, table
    assert "…" not in table, table  # no column collapsed for lack of room
    header = {word for line in table.splitlines()[:4] for word in line.split()}
    for column in ("train.method", "ensemble.rule", "logloss", "auc", "test_logloss"):
        assert column in header, (column, table)
    assert "sbi" in table and "confident" in table
    rows = [line for line in table.splitlines() if "workspace" in line or "[" in line]
    assert len(rows) >= 3, table  # the workspace, the baseline's two experiments


def test_the_exps_form_drops_every_dependency_and_no_metric_or_param(stages):
    """``make exps`` drops columns by a regex: it must match every dependency path of the
    pipeline, and no headline metric or params.yaml key."""
    drop = re.search(r"--drop '([^']+)'", _exps_command()).group(1)
    pattern = re.compile(drop)
    deps = {d for s in stages for d in s["deps"]}
    assert all(pattern.match(d) for d in deps), [d for d in deps if not pattern.match(d)]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())

    def keys(d: dict, prefix: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            out += keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
        return out

    names = [*keys(params), "logloss", "auc", "test_logloss", "test_auc", "eval_logloss",
             "distorted_logloss", "Experiment", "Created"]  # fmt: skip
    assert not [n for n in names if pattern.match(n)]


def test_docs_pipeline_picture_is_dvc_dag(tmp_path):
    """docs/pipeline.md holds ``dvc dag --md`` of this dvc.yaml; regenerate it with
    ``make dag`` when a stage or a dependency changes."""
    mermaid = _run([str(DVC), "dag", "--md"], ROOT).strip()
    assert mermaid.startswith("```mermaid") and "train@0" in mermaid
    doc = (ROOT / "docs" / "pipeline.md").read_text()
    assert mermaid in doc, "docs/pipeline.md is stale: run make dag"
