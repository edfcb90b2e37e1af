"""The kind registry, the checkpoint schema and the one inference-bundle loader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from dfdc.kinds import ModelKind, get_kind, kind_names, register_kind
from dfdc.kinds.checkpoint import SCHEMA, CheckpointError, read_checkpoint
from tests.conftest import ROOT

# Every module of the package, the kinds' own included: nothing outside a kind's class body
# may compare with a kind's name (a kind knows its own name; it never tests another's).
MODULES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "src" / "dfdc").rglob("*.py"))


def test_the_builtin_kinds_are_registered_and_an_unknown_one_is_one_line():
    assert kind_names() == ["frame", "sequence"]
    assert get_kind("frame").name == "frame" and get_kind("sequence").name == "sequence"
    with pytest.raises(ValueError, match=r"no model kind 'lstm' \(registered: frame, sequence\)"):
        get_kind("lstm")


def test_a_kind_registers_once():
    with pytest.raises(ValueError, match="registered twice"):

        @register_kind
        class Again(ModelKind):
            name = "frame"


def test_the_scan_covers_every_layer():
    assert len(MODULES) > 60
    for part in ("core/config.py", "training/loop.py", "inference/predict.py", "cli.py",
                 "stages/train.py", "kinds/registry.py", "inference/kernel.py"):  # fmt: skip
        assert f"src/dfdc/{part}" in MODULES


@pytest.mark.parametrize("path", MODULES)
def test_no_module_tests_a_kind_name(path):
    """The loop, inference, the ensemble, the kernel, the CLI and the config ask the registry;
    no module compares anything with a kind's name (``x == "sequence"``, ``in ("frame",)``)."""
    tree = ast.parse((ROOT / path).read_text())
    names = set(kind_names())
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            items = [e for c in sides if isinstance(c, ast.Tuple | ast.List | ast.Set)
                     for e in c.elts]  # fmt: skip
            consts = {
                c.value
                for c in sides + items
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
            assert not consts & names, f"{path}:{node.lineno} compares with a kind name"


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    junk = tmp_path / "best.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"best\.pt: not a readable checkpoint"):
        read_checkpoint(junk)
    old = tmp_path / "old.pt"
    torch.save({"model": {}, "config": {}}, old)
    with pytest.raises(CheckpointError, match=rf"schema None, expected {SCHEMA}"):
        read_checkpoint(old)


def test_one_bundle_loader_puts_weights_and_inputs_on_one_device(kernel_package):
    """The ensemble stage, predict and the kernel all load through load_bundle: the models of
    the ensemble's runs, its rule, on the device the runtime names (weights and inputs alike:
    the ensemble stage once left weights on the CPU while the predictor moved inputs to CUDA)."""
    from dfdc.inference.predict import load_bundle

    _, out, ens = kernel_package
    bundle = load_bundle(out / "models", "cpu", ensemble=ens)
    predictor = bundle.predictor
    assert {m.name for m in predictor.models} == {"kernel/fold0", "kernel_seq/fold0"}
    assert predictor.rule == ens.rule and bundle.ensemble.runs == ens.runs
    for m in predictor.models:
        modules = [m.model] + ([m.embedder] if m.embedder is not None else [])
        devices = {p.device for mod in modules for p in mod.parameters()}
        assert devices == {predictor.rt.device}
    equal = load_bundle("unused", "cpu", models=Path(out / "models" / "kernel"))
    assert equal.ensemble is None and [m.name for m in equal.predictor.models] == ["kernel/fold0"]
