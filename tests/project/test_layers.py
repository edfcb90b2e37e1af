"""The package's layers, checked statically: no import circle between modules or between
sub-packages, and no import upward. Every import statement counts, those inside functions too
(they hide a circle, they do not remove it).

Bottom to top (``docs/layout.md`` draws it)::

    core -> kaggle client -> dataset, faces -> masks -> crops -> kinds (the models)
         -> training, inference -> reports, robustness -> stages -> cli
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "dfdc"

# Sub-package (or top-level module) -> its layer; a module may import its own layer or below.
LAYERS: dict[str, int] = {
    "dfdc": 0,  # the package's own __init__ (it only silences warnings)
    "core": 0,
    "kaggle": 1,  # the official client wrapped (the data stage's kaggle source uses it)
    "dataset": 2,
    "faces": 2,
    "masks": 3,
    "crops": 4,
    "kinds": 5,
    "training": 6,
    "inference": 6,
    "reports": 7,
    "robustness": 7,
    "stages": 8,
    "cli": 9,
    "lab": 9,  # the Jupyter kernel that starts at the project root
}


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package``."""
    out = {}
    for f in sorted(package.rglob("*.py")):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def import_edges(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a import b`` counts ``a.b`` when that
    is a module). A package ``__init__`` importing its own children is a re-export, not an
    edge: the children do not import the package back through it."""
    mods = module_files(package)
    top = package.name

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, f in mods.items():
        is_init = f.name == "__init__.py"
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = mod.split(".") if is_init else mod.split(".")[:-1]
                    base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] != top:
                    continue
                r = resolve(t)
                if r and r != mod and not (is_init and r.startswith(mod + ".")):
                    edges[mod].add(r)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def folder(mod: str) -> str:
    """``dfdc.faces.detect`` -> ``faces``; ``dfdc.cli`` -> ``cli``; ``dfdc`` -> ``dfdc``."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def folder_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for a, targets in edges.items():
        for b in targets:
            if folder(a) != folder(b):
                out.setdefault(folder(a), set()).add(folder(b))
    return out


def upward(edges: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    return sorted(
        f"{a} (layer {layers[folder(a)]}) imports {b} (layer {layers[folder(b)]})"
        for a, targets in edges.items()
        for b in targets
        if layers[folder(b)] > layers[folder(a)]
    )


def test_every_subpackage_has_a_layer():
    names = {folder(m) for m in module_files(PACKAGE)}
    assert not names - set(LAYERS), f"sub-packages with no layer in LAYERS: {names - set(LAYERS)}"


def test_no_import_circle_between_modules():
    found = cycles(import_edges(PACKAGE))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_circle_between_subpackages():
    found = cycles(folder_graph(import_edges(PACKAGE)))
    assert not found, "sub-package circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_import_goes_down_or_stays_in_its_layer():
    bad = upward(import_edges(PACKAGE), LAYERS)
    assert not bad, "imports upward:\n" + "\n".join(bad)


def test_no_stage_imports_another_stage():
    edges = import_edges(PACKAGE)
    bad = sorted(
        f"{a} imports {b}"
        for a, targets in edges.items()
        if a.startswith("dfdc.stages.")
        for b in targets
        if b.startswith("dfdc.stages.")
    )
    assert not bad, "stages share code through a library, not each other: " + "; ".join(bad)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.mark.parametrize("lazy", [False, True])
def test_the_checker_finds_a_circle_and_an_upward_import(tmp_path, lazy):
    """The check itself: a circle hidden in a function is still a circle, a re-exporting
    ``__init__`` is not, and an import from a higher layer is named."""
    inner = "def f():\n    from pkg.low.b import g\n" if lazy else "from pkg.low.b import g\n"
    pkg = _write(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "from pkg.low.a import x\n",
            "low/a.py": "from pkg.high.c import y\n",
            "low/b.py": "from pkg.low.a import x\n",
            "high/__init__.py": "",
            "high/c.py": inner,
        },
    )
    edges = import_edges(pkg)
    assert "pkg.low" not in edges["pkg.low.a"]  # the __init__ re-export is no edge back
    assert cycles(folder_graph(edges)) == [["high", "low"]]
    assert cycles(edges) == [["pkg.high.c", "pkg.low.a", "pkg.low.b"]]
    assert upward(edges, {"pkg": 0, "low": 0, "high": 1}) == [
        "pkg.low.a (layer 0) imports pkg.high.c (layer 1)"
    ]
