"""The kind registry, the checkpoint schema and the one inference-bundle loader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from dfdc.kinds import ModelKind, get_kind, kind_names, register_kind
from dfdc.kinds.checkpoint import SCHEMA, CheckpointError, read_checkpoint
from tests.conftest import ROOT

CALLERS = [
    "src/dfdc/training/engine.py",
    "src/dfdc/inference/predict.py",
    "src/dfdc/ensemble.py",
    "src/dfdc/kaggle/kernel.py",
    "src/dfdc/cli.py",
]


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


@pytest.mark.parametrize("path", CALLERS)
def test_callers_never_test_a_kind_name(path):
    """The loop, inference, the ensemble, the kernel and the CLI ask the registry; none of
    them compares anything with a kind's name."""
    tree = ast.parse((ROOT / path).read_text())
    names = set(kind_names())
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            consts = {
                c.value
                for c in [node.left, *node.comparators]
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
