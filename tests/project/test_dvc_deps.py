"""``dvc.yaml`` deps cannot drift from the code: every module of ``src/dfdc`` that a stage's
command can import (statically, including imports inside functions) must be covered by one of
the stage's deps, a file or a folder. Otherwise ``dvc repro`` skips a stage whose code changed.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
import yaml

from dfdc.stages import STAGES
from tests.conftest import ROOT

SRC = ROOT / "src"
CLI = SRC / "dfdc" / "cli.py"
# Run by every import of dfdc; it only silences a warning, so it is not a stage's code.
EXEMPT = {SRC / "dfdc" / "__init__.py"}


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(tree: ast.AST) -> set[str]:
    """Every dfdc module an import statement anywhere in ``tree`` names (``from a import b``
    counts ``a.b`` when that is a module), and the packages on the way (their __init__ runs)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    out = set()
    for name in names:
        if name == "dfdc" or name.startswith("dfdc."):
            parts = name.split(".")
            out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {n for n in out if module_file(n) is not None}


def _cli_tree(handler: str) -> ast.Module:
    """cli.py as one command runs it: module level, the parser and main, and that command's
    handler; the other commands' handlers import their code only when they run."""
    tree = ast.parse(CLI.read_text())
    tree.body = [
        n
        for n in tree.body
        if not (isinstance(n, ast.FunctionDef) and n.name.startswith("_cmd_") and n.name != handler)
    ]
    return tree


def closure(trees: list[ast.AST]) -> set[Path]:
    todo = set().union(*(_imports(t) for t in trees))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo |= _imports(ast.parse(module_file(name).read_text())) - seen
    return {module_file(n) for n in seen}


def stage_code(cmd: str) -> set[Path]:
    """The src/dfdc files a stage's command can execute."""
    words = shlex.split(cmd)
    assert words[0] == "dfdc", f"stage command {cmd!r} does not go through the dfdc CLI"
    if words[1] == "notebook":
        notebook = ROOT / words[2]
        trees = [_cli_tree("_cmd_notebook"), ast.parse(notebook.read_text())]
    else:
        trees = [_cli_tree("_cmd_stage"), ast.parse(f"import {STAGES[words[1]].module}")]
    return closure(trees) | {CLI}


def _stages() -> dict[str, dict]:
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: (spec["do"] if "foreach" in spec else spec) for name, spec in raw.items()}


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_the_code_its_command_imports(stage):
    spec = _stages()[stage]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    code = stage_code(spec["cmd"]) - EXEMPT
    missing = sorted(str(p.relative_to(ROOT)) for p in code if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage!r} imports {missing} but does not depend on them"


def test_the_checker_sees_lazy_imports_and_notebook_imports():
    """The check itself: an import inside a function counts, a notebook's imports count, and
    a dep folder covers the files below it."""
    train = stage_code(_stages()["train"]["cmd"])
    rel = {str(p.relative_to(ROOT)) for p in train}
    # stage -> loop -> kinds package (which imports the sequence kind) -> checkpoint
    assert {"src/dfdc/stages/train.py", "src/dfdc/training/loop.py"} <= rel
    assert "src/dfdc/kinds/sequence.py" in rel and "src/dfdc/kinds/checkpoint.py" in rel
    assert "src/dfdc/reports/plots.py" in rel
    # The data stage's Kaggle source imports the client wrapper inside a function.
    data = {str(p.relative_to(ROOT)) for p in stage_code(_stages()["data"]["cmd"])}
    assert "src/dfdc/kaggle/api.py" in data and "src/dfdc/training/loop.py" not in data
    assert "src/dfdc/stages/train.py" not in data
    assert _covered(SRC / "dfdc" / "faces" / "store.py", ["src/dfdc/faces"])
    assert not _covered(SRC / "dfdc" / "faces" / "store.py", ["src/dfdc/faces/detect.py"])
