"""``dvc.yaml`` deps cannot drift from the code, in both directions.

Code: every stage depends on its code fingerprint ``code/<stage>.txt`` and on no source file or
folder (nothing extra), and the ``code`` stage writes one file for every stage from all of
``src/dfdc`` and the notebooks (nothing missing); what a fingerprint holds is the stage's static
import closure (:mod:`dfdc.core.fingerprint`, imports inside functions and the notebook's
included). Data: a stage that reads another stage's output through ``params.<section>.<key>``
anywhere in its code depends on it.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfdc.core.fingerprint import Sources, StageCode
from dfdc.stages import STAGES
from tests.conftest import ROOT

SRC = ROOT / "src"
CODE_STAGE = "code"


def _dvc() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _stages() -> dict[str, dict]:
    return {name: spec.get("do", spec) for name, spec in _dvc().items()}


def _paths(entries: list) -> list[str]:
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


@functools.cache
def _params_yaml() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _resolve(text: str) -> str:
    """``${a.b}`` from params.yaml; ``${item}`` as fold 0."""
    params = _params_yaml()

    def value(m: re.Match) -> str:
        if m.group(1) == "item":
            return "0"
        v = params
        for part in m.group(1).split("."):
            v = v[part]
        return str(v)

    return re.sub(r"\$\{([\w.]+)\}", value, text)


def _specs() -> dict[str, StageCode]:
    return {name: StageCode(s.module, s.notebook, s.ships) for name, s in STAGES.items()}


@pytest.fixture(scope="module")
def sources() -> Sources:
    return Sources(SRC, ROOT)


def _rel(sources: Sources, modules: set[str]) -> set[str]:
    return {sources.file(m).relative_to(ROOT).as_posix() for m in modules}


def test_every_stage_is_in_dvc_yaml_and_the_code_stage_fingerprints_each():
    stages = _stages()
    assert set(stages) - {CODE_STAGE} == set(STAGES)
    code = stages[CODE_STAGE]
    assert shlex.split(code["cmd"])[:2] == ["dfdc", "fingerprint"]
    assert set(_paths(code["deps"])) == {"src/dfdc", "notebooks"}
    assert sorted(_paths(code["outs"])) == sorted(f"code/{n}.txt" for n in STAGES)
    for out in code["outs"]:  # kept in git: a diff names the module that changed
        assert next(iter(out.values())) == {"cache": False}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_depends_on_its_fingerprint_and_on_no_source(stage):
    spec = _stages()[stage]
    deps = _paths(spec["deps"])
    assert f"code/{stage}.txt" in deps, f"dvc.yaml stage {stage!r}: no dep code/{stage}.txt"
    source = [d for d in deps if d.startswith("src/") or d.startswith("code/")]
    assert source == [f"code/{stage}.txt"], (
        f"dvc.yaml stage {stage!r} depends on {source}: its code is code/{stage}.txt alone"
    )
    # Its command runs what STAGES says, and its notebook is a dep (its text is in the HTML).
    words = shlex.split(spec["cmd"])
    assert words[0] == "dfdc", f"stage command {spec['cmd']!r} does not go through the dfdc CLI"
    notebook = STAGES[stage].notebook
    if notebook:
        assert words[1:3] == ["notebook", notebook] and notebook in deps
    else:
        assert words[1] in (stage, "export") and not any(d.startswith("notebooks/") for d in deps)


def test_the_closure_sees_lazy_imports_and_notebook_imports_and_leaves_the_cli_out(sources):
    """An import inside a function counts, a notebook's imports count, the CLI never does."""
    specs = _specs()
    train = _rel(sources, sources.stage_code(specs["train"]))
    assert {"src/dfdc/stages/train.py", "src/dfdc/training/loop.py"} <= train
    assert "src/dfdc/kinds/checkpoint.py" in train and "src/dfdc/reports/plots.py" in train
    assert "src/dfdc/core/notebooks.py" in train  # the runner of a notebook stage
    # The data stage's Kaggle source imports the client wrapper inside a function.
    data = _rel(sources, sources.stage_code(specs["data"]))
    assert "src/dfdc/kaggle/api.py" in data and "src/dfdc/training/loop.py" not in data
    # An import for type hints only (``if TYPE_CHECKING:``) never runs.
    assert "dfdc.core.config" not in sources.closure(["dfdc.core.provenance"])
    for name, spec in specs.items():
        code = _rel(sources, sources.stage_code(spec))
        assert ("src/dfdc/cli.py" in code) == spec.ships, name  # the kernel's wheel holds it
        assert f"src/dfdc/stages/{name}.py" in code


def test_kinds_are_reached_by_name_only_where_a_stage_resolves_them(sources):
    """A frame fold never runs the sequence kind; the sequence fold runs its embedder's
    kind; a stage loading any checkpoint reaches every kind."""
    specs = _specs()
    train = _rel(sources, sources.stage_code(specs["train"]))
    assert "src/dfdc/kinds/frame.py" in train and "src/dfdc/kinds/sequence.py" not in train
    for part in ("sequence_head", "embeddings", "tracks"):  # the sequence kind's own modules
        assert f"src/dfdc/kinds/{part}.py" not in train, part
    seq = _rel(sources, sources.stage_code(specs["train_sequence"]))
    assert {"src/dfdc/kinds/frame.py", "src/dfdc/kinds/sequence.py"} <= seq
    for name in ("ensemble", "export", "evaluate", "robustness"):
        code = _rel(sources, sources.stage_code(specs[name]))
        assert {"src/dfdc/kinds/frame.py", "src/dfdc/kinds/sequence.py"} <= code, name
    for name in ("data", "eda", "faces", "folds", "masks", "compress"):
        assert not any("/kinds/" in p for p in _rel(sources, sources.stage_code(specs[name])))


def test_the_kind_rule_holds_at_run_time(sources):
    """What a fold's kind lookup really imports is inside the stage's fingerprint: the frame
    fold's stage module and its kind, then the sequence fold's (which loads its embedder)."""
    script = """
import sys
from dfdc.core.config import Params
from dfdc.kinds import get_kind
def loaded():
    return sorted(m for m in sys.modules if m == "dfdc" or m.startswith("dfdc."))
import dfdc.stages.train as st
get_kind(getattr(Params(), st.SECTION).kind)
print(" ".join(loaded()))
import dfdc.stages.train_sequence as sq
get_kind(getattr(Params(), sq.SECTION).kind)
get_kind(Params().train.kind)
print(" ".join(loaded()))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    # (a folder without __init__.py runs no code of its own)
    frame, both = ({m for m in line.split() if sources.file(m)} - {"dfdc"} for line in out)
    # The loader imports every section's module to parse the file; a stage's code holds those
    # it reads (test_config_sections below), so only section modules may be imported unseen.
    sections = set(sources.section_modules().values())
    train = sources.code(["dfdc.stages.train"], ["frame"], ["train"])
    assert frame - sections <= train, f"train: imported {sorted(frame - sections - train)} unseen"
    assert "dfdc.kinds.sequence" in both - frame
    seq = sources.code(["dfdc.stages.train_sequence"], ["sequence"], ["sequence"])
    unseen = both - frame - sections - seq
    assert not unseen, f"train_sequence: imported {sorted(unseen)} unseen"


def _params_paths(tree: ast.AST) -> set[tuple[str, str]]:
    """Every ``params.<section>.<key>`` attribute chain in ``tree``."""
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "params"
        ):
            out.add((node.value.attr, node.attr))
    return out


def _overlap(a: str, b: str) -> bool:
    pa, pb = Path(a), Path(b)
    return pa == pb or pa in pb.parents or pb in pa.parents


# Read through params in a module a stage runs, yet not by that stage (the static check cannot
# follow values): the loop hands every run the masks table's path; only the frame kind opens it.
NOT_READ = {("train_sequence", "data/interim/masks.parquet")}


@pytest.fixture(scope="module")
def params_chains(sources) -> dict[str, set[tuple[str, str]]]:
    return {m: _params_paths(sources.tree(sources.file(m))) for m in sources.modules()}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_depends_on_the_outputs_of_others_it_reads(stage, sources, params_chains):
    """A path another stage writes, read through ``params.<section>.<key>`` anywhere in this
    stage's code or notebook, is covered by one of this stage's deps or outs (train_sequence
    once read the compressed copies without depending on them)."""
    from dfdc.core.config import load_params

    params = load_params(ROOT / "params.yaml")
    stages = _stages()
    produced = {
        _resolve(p): name
        for name, spec in stages.items()
        for p in _paths(spec.get("outs")) + _paths(spec.get("metrics")) + _paths(spec.get("plots"))
    }
    spec = stages[stage]
    mine = [_resolve(p) for p in _paths(spec["deps"]) + _paths(spec.get("outs"))]
    st = STAGES[stage]  # what it runs (the package stage ships every module but runs these)
    chains = [params_chains[m] for m in sources.stage_code(StageCode(st.module, st.notebook))]
    if st.notebook:
        chains.append(_params_paths(ast.parse((ROOT / st.notebook).read_text())))
    read = set()
    for section, key in set().union(*chains):
        value = getattr(getattr(params, section, None), key, None)
        if isinstance(value, str) and value:
            read.add(value)
    missing = sorted(
        path
        for path in read
        for out, writer in produced.items()
        if writer != stage
        and _overlap(path, out)
        and not any(_overlap(path, d) for d in mine)
        and (stage, path) not in NOT_READ
    )
    assert not missing, f"dvc.yaml stage {stage!r} reads {missing} but does not depend on them"
