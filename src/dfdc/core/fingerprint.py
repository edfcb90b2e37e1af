"""The code a stage runs, as one small text file a stage: what ``dvc.yaml`` makes each stage
depend on instead of source folders.

A stage's *code* is the static import closure of what its command executes: its stage module
(``dfdc.stages.<stage>``), and for a notebook stage the notebook's own imports and the notebook
runner. Imports inside functions count (they run when the function does). The command-line
module is not part of it (it only parses arguments and calls the stage's ``run``), nor is
``dfdc/__init__.py`` (it only silences a warning). A stage that ships the package (the Kaggle
kernel's wheel) runs every module.

Each module's fingerprint is the sha256 of its syntax tree with the docstrings removed
(``ast.dump``; every statement that is a string literal alone goes, attribute docstrings
included): comments, docstrings and formatting leave it unchanged, any change to what the code
does changes it. The ``code`` stage writes ``code/<stage>.txt`` (one line a module: path
and hash, so a diff says which module changed); every other stage depends on its file. A
comment edit then reruns the ``code`` stage alone (a second) and its outputs come out
byte-identical, so DVC reruns nothing else; a real edit changes exactly the files of the stages
whose closure holds the module.

Model kinds are resolved by name (:data:`dfdc.kinds.registry.KINDS` maps a name to a
``"module:Class"`` string imported on demand), so no import statement reaches them. The rule
here: a closure that holds a kind *lookup* (a module importing ``get_kind`` or
``run_config_from_dict``) reaches every registered kind, except in a stage that trains one
section (a module-level ``SECTION``): there the lookups of the stage's own code resolve that
section's kind only, and a kind whose own code looks kinds up (the sequence kind loads its
embedder's checkpoint) reaches every kind. ``tests/project/test_dvc_deps.py`` checks the rule
against the modules a fold's kind lookup really imports.

Configuration is read by section. :mod:`dfdc.core.config` (the loader) imports every section's
module of :mod:`dfdc.core.sections` to parse the file, but a stage's outputs depend on the
sections it reads, so the loader's imports of section modules are not followed. A closure
reaches a section's module when its code reads the section: an attribute of that name
(``params.faces``, ``ctx.faces``: any attribute so named, read anywhere in the closure or the
notebook, which errs toward more), a stage's ``SECTION``, or an import of a class the section
defines (also through the loader: ``from dfdc.core.config import FacesConfig``). A key added to
the ``robustness`` section then reruns the stages that read it, not the faces or the folds.

The Python version is part of the hash (``ast.dump`` differs between versions): a new Python
reruns every stage, as it should.

Nothing here imports more than the standard library, so ``dfdc fingerprint`` takes a second.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LOOKUPS",
    "Sources",
    "StageCode",
    "code_digest",
    "fingerprint_text",
    "normalized_digest",
    "write_fingerprints",
]

PACKAGE = "dfdc"
# The registry's functions that import a kind by a name only known at run time.
LOOKUPS = frozenset({"get_kind", "run_config_from_dict", "run_sections", "kind_names"})
REGISTRY = "dfdc.kinds.registry"
LOADER = "dfdc.core.config"  # reads params.yaml into every section
SECTIONS = "dfdc.core.sections"  # one module a params.yaml section
RUNNER = "dfdc.core.notebooks"  # what executes a notebook stage's notebook
EXEMPT = frozenset({PACKAGE})  # dfdc/__init__.py: a warning filter, not a stage's code
HEADER = (
    "# The code of DVC stage {stage}: each module it runs and the sha256 of its syntax tree\n"
    "# without docstrings (comments and formatting do not count). Written by `dfdc fingerprint`;\n"
    "# do not edit.\n"
)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """Drop every statement that is a string literal alone: docstrings of modules, classes and
    functions, and the attribute docstrings after an assignment (no-ops, all of them)."""
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [
                    s
                    for s in body
                    if not (isinstance(s, ast.Expr) and _string(s.value) is not None)
                ]
                if len(kept) != len(body):
                    setattr(node, name, kept or [ast.Pass()])
    return tree


def _string(node: ast.AST | None) -> str | None:
    """A string literal's value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _assigned(node: ast.AST, name: str) -> str | None:
    """The string literal ``node`` assigns to ``name`` (``name = "..."``), if it does."""
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in node.targets
    ):
        return _string(node.value)
    return None


def _type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): a block that never runs."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` that can run: ``ast.walk`` less the bodies of ``if
    TYPE_CHECKING:`` blocks (imports for type hints only)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if _type_checking(node):
            todo += [node.test, *node.orelse]
        else:
            todo += list(ast.iter_child_nodes(node))
    return out


def normalized_digest(text: str) -> str:
    """sha256 of the code ``text`` says, not of how it is written: its syntax tree without
    docstrings, comments or layout."""
    tree = _strip_docstrings(ast.parse(text))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


@dataclass(frozen=True)
class StageCode:
    """What a stage's command executes: its module, its notebook (run through the notebook
    runner), or the whole package (``ships``: the stage's output holds every module)."""

    module: str
    notebook: str | None = None
    ships: bool = False


class Sources:
    """The package's source files under ``src`` (the folder holding ``dfdc/``), parsed once."""

    def __init__(self, src: str | Path, root: str | Path | None = None) -> None:
        self.src = Path(src)
        self.root = Path(root) if root is not None else self.src.parent  # notebooks, paths
        self._trees: dict[Path, ast.Module] = {}
        self._edges: dict[str, set[str]] = {}  # module -> the modules it imports
        self._digests: dict[str, str] = {}
        self._lookups: dict[str, bool] = {}
        self._files: dict[str, Path | None] = {}
        self._sections: dict[str, str] = {}  # params section -> its kind
        self._attrs: dict[str, frozenset[str]] = {}  # module -> attribute names it reads
        self._reexports: dict[str, str] | None = None  # class name -> its section module

    def changed(self, path: str | Path) -> None:
        """Forget what was read from ``path`` (edited since)."""
        path = Path(path)
        self._trees.pop(path, None)
        self._sections.clear()
        self._reexports = None
        for cache in (self._edges, self._digests, self._lookups, self._attrs):
            for name in [n for n in cache if self.file(n) == path]:
                del cache[name]

    # -- files and trees ---------------------------------------------------------------------

    def file(self, name: str) -> Path | None:
        """The file of module ``name``, or None when it is no module of the package."""
        if name not in self._files:
            base = self.src.joinpath(*name.split("."))
            found = [c for c in (base.with_suffix(".py"), base / "__init__.py") if c.is_file()]
            self._files[name] = found[0] if found else None
        return self._files[name]

    def tree(self, path: Path) -> ast.Module:
        if path not in self._trees:
            self._trees[path] = ast.parse(path.read_text(), filename=str(path))
        return self._trees[path]

    def modules(self) -> set[str]:
        """Every module of the package."""
        out = set()
        for f in (self.src / PACKAGE).rglob("*.py"):
            parts = list(f.relative_to(self.src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.add(".".join(parts))
        return out

    # -- imports -----------------------------------------------------------------------------

    def imports(self, tree: ast.AST) -> set[str]:
        """Every package module an import statement anywhere in ``tree`` names (``from a
        import b`` counts ``a.b`` when that is a module), and the packages on the way (their
        ``__init__`` runs)."""
        names: set[str] = set()
        for node in _run_nodes(tree):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names |= {f"{node.module}.{a.name}" for a in node.names}
                if node.module == LOADER:  # a section's class through the loader: its module
                    names |= {self._reexported()[a.name] for a in node.names
                              if a.name in self._reexported()}  # fmt: skip
        out = set()
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")
                out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        return {n for n in out if self.file(n) is not None}

    def closure(self, roots: Iterable[str]) -> set[str]:
        """The modules importing ``roots`` can run, by import statements alone (a module's
        packages included: their ``__init__`` runs first)."""
        todo = set()
        for root in roots:
            parts = root.split(".")
            todo |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        todo = {n for n in todo if self.file(n) is not None}
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name not in self._edges:
                self._edges[name] = self.imports(self.tree(self.file(name)))
            edges = self._edges[name]
            if name == LOADER:  # it parses every section; a stage depends on those it reads
                edges = {e for e in edges if not e.startswith(SECTIONS + ".")}
            todo |= edges - seen
        return seen

    # -- sections ----------------------------------------------------------------------------

    def _reexported(self) -> dict[str, str]:
        """Class name -> the section module that defines it, as the loader imports them."""
        if self._reexports is None:
            table: dict[str, str] = {}
            path = self.file(LOADER)
            for node in self.tree(path).body if path else []:
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    SECTIONS + "."
                ):
                    table |= {a.asname or a.name: node.module for a in node.names}
            self._reexports = table
        return self._reexports

    def section_modules(self) -> dict[str, str]:
        """params.yaml section (a field of the loader's ``Params``) -> its module."""
        path = self.file(LOADER)
        fields = [
            n.target.id
            for c in (self.tree(path).body if path else [])
            if isinstance(c, ast.ClassDef) and c.name == "Params"
            for n in c.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
        ]
        named = {f: f"{SECTIONS}.{f}" for f in fields}
        return {f: m for f, m in named.items() if self.file(m) is not None}

    def attributes(self, name: str) -> frozenset[str]:
        """Every attribute name module ``name`` reads or writes (``x.faces`` gives "faces")."""
        if name not in self._attrs:
            tree = self.tree(self.file(name))
            self._attrs[name] = frozenset(
                n.attr for n in _run_nodes(tree) if isinstance(n, ast.Attribute)
            )
        return self._attrs[name]

    def with_sections(self, modules: set[str], reads: Iterable[str] = ()) -> set[str]:
        """``modules`` and the section modules (and what they import) of every section read
        by them or named in ``reads``; the loader's own reads are its parsing, not a stage's."""
        table = self.section_modules()
        out, named = set(modules), set(reads)
        while True:
            found = set(named)
            for m in out - {LOADER}:
                found |= self.attributes(m)
            new = self.closure(table[s] for s in found & table.keys()) - out
            if not new:
                return out
            out |= new

    def _is_lookup(self, name: str) -> bool:
        """Does module ``name`` import a registry function that resolves a kind by name?"""
        if name not in self._lookups:
            self._lookups[name] = any(
                isinstance(node, ast.ImportFrom)
                and node.module in (REGISTRY, "dfdc.kinds")
                and bool({a.name for a in node.names} & LOOKUPS)
                for node in ast.walk(self.tree(self.file(name)))
            )
        return self._lookups[name]

    # -- kinds -------------------------------------------------------------------------------

    def kinds(self) -> dict[str, str]:
        """The registry's table: kind name -> the module that defines it."""
        path = self.file(REGISTRY)
        if path is None:
            return {}
        for node in self.tree(path).body:
            target = node.target if isinstance(node, ast.AnnAssign) else None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            if isinstance(target, ast.Name) and target.id == "KINDS" and node.value is not None:
                table = ast.literal_eval(node.value)
                return {k: v.partition(":")[0] for k, v in table.items()}
        raise ValueError(f"{path}: no KINDS table (kind name -> 'module:Class')")

    def section_kind(self, section: str) -> str:
        """The kind whose class says ``section = "<section>"``."""
        if section in self._sections:
            return self._sections[section]
        for name, module in self.kinds().items():
            tree = self.tree(self.file(module))
            if any(_assigned(n, "section") == section for n in ast.walk(tree)):
                self._sections[section] = name
                return name
        raise ValueError(f"no registered model kind trains params section {section!r}")

    def _section(self, module: str) -> str | None:
        """A stage module's module-level ``SECTION = "..."`` (a stage training one run)."""
        found = [_assigned(n, "SECTION") for n in self.tree(self.file(module)).body]
        return next((f for f in found if f is not None), None)

    def code(
        self, roots: Iterable[str], kinds: Iterable[str] | None = None, reads: Iterable[str] = ()
    ) -> set[str]:
        """The modules ``roots`` run, kinds resolved by name included: the lookups reached
        from ``roots`` resolve ``kinds`` (None: every registered kind); a kind whose own code
        looks kinds up reaches every kind. Sections as the module docstring says, ``reads``
        naming more (a notebook's, a stage's ``SECTION``)."""
        base = self.closure(roots)
        if not any(self._is_lookup(m) for m in base):
            return self.with_sections(base, reads) - EXEMPT
        table = self.kinds()
        wanted = set(table) if kinds is None else set(kinds)
        done: set[str] = set()
        out = set(base)
        while wanted - done:
            name = (wanted - done).pop()
            done.add(name)
            reached = self.closure([table[name]])
            if any(self._is_lookup(m) for m in reached - base):
                wanted |= set(table)
            out |= reached
        return self.with_sections(out, reads) - EXEMPT

    def stage_code(self, stage: StageCode) -> set[str]:
        """The modules a stage's command runs (the CLI excluded)."""
        if stage.ships:  # its wheel holds every module, the warning filter included
            return self.modules()
        roots, reads = {stage.module}, set()
        if stage.notebook:
            notebook = self.tree(self.root / stage.notebook)
            roots |= {RUNNER} | self.imports(notebook)
            reads |= {n.attr for n in _run_nodes(notebook) if isinstance(n, ast.Attribute)}
        section = self._section(stage.module)
        kinds = None if section is None else [self.section_kind(section)]
        return self.code(roots, kinds, reads | ({section} if section else set()))

    # -- fingerprints ------------------------------------------------------------------------

    def digest(self, name: str) -> str:
        """The module's :func:`normalized_digest`."""
        if name not in self._digests:
            self._digests[name] = normalized_digest(self.file(name).read_text())
        return self._digests[name]

    def code_digest(self, roots: Iterable[str], kinds: Iterable[str] | None = None) -> str:
        """One sha256 over the modules of :meth:`code` and their digests (by module name, so
        an editable checkout and an installed wheel agree)."""
        text = "".join(f"{m} {self.digest(m)}\n" for m in sorted(self.code(roots, kinds)))
        return hashlib.sha256(text.encode()).hexdigest()

    def lines(self, modules: Iterable[str]) -> str:
        """One line a module, sorted by path: ``src/dfdc/x.py <sha256>``."""
        rows = sorted(
            (self.file(m).relative_to(self.src.parent).as_posix(), self.digest(m)) for m in modules
        )
        return "".join(f"{path} {digest}\n" for path, digest in rows)


def fingerprint_text(sources: Sources, stage: str, spec: StageCode) -> str:
    """The file ``code/<stage>.txt``: a header and one line a module the stage runs."""
    return HEADER.format(stage=stage) + sources.lines(sources.stage_code(spec))


def write_fingerprints(
    stages: Mapping[str, StageCode], out_dir: str | Path, sources: Sources | None = None
) -> list[Path]:
    """Write ``out_dir/<stage>.txt`` for every stage; a file whose text is unchanged is left
    as it is (same bytes, same modification time)."""
    from dfdc.core.io import write_text

    sources = sources or Sources(_installed_src())
    out_dir = Path(out_dir)
    written = []
    for stage, spec in stages.items():
        path = out_dir / f"{stage}.txt"
        text = fingerprint_text(sources, stage, spec)
        if not path.is_file() or path.read_text() != text:
            write_text(text, path)
        written.append(path)
    return written


def _installed_src() -> Path:
    return Path(__file__).resolve().parents[2]


@functools.cache
def _installed() -> Sources:
    return Sources(_installed_src())


@functools.cache
def code_digest(*roots: str, kinds: tuple[str, ...] | None = None) -> str:
    """One sha256 over the fingerprints of the code ``roots`` run (kinds as in
    :meth:`Sources.code`), in the installed package: what a resume or cache key holds so that
    a result is reused only while the code that computed it is the same, whatever changed
    elsewhere (drawing code, the CLI, comments). Computed once a process."""
    return _installed().code_digest(roots, kinds)
