"""Fault matrix, values (core): every numeric key of params.yaml has a declared range, a value
outside it or against a rule between keys stops the load in one line, an empty params.yaml is an
error, every JSON written is strict, and written files follow the user's umask."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import types
import typing
from pathlib import Path

import numpy as np
import pytest

from dfdc.cli import main
from dfdc.core.config import ConfigError, Params, load_params, params_from_dict
from dfdc.core.io import atomic_path, to_json, write_json, write_text
from dfdc.core.typed import field_range
from tests.conftest import ROOT


def _numeric(tp: object) -> bool:
    """Whether a field's type holds numbers (a number, a tuple of them, a union with one)."""
    if tp in (int, float):
        return True
    if typing.get_origin(tp) in (tuple, typing.Union, types.UnionType):
        return any(_numeric(a) for a in typing.get_args(tp) if a is not Ellipsis)
    return False


def _fields(cls: type, prefix: str = ""):
    """(key, field, type, default) of every leaf field of a config class, nested ones too."""
    hints = typing.get_type_hints(cls)
    default = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _fields(tp, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, tp, getattr(default, f.name)


def test_every_numeric_key_declares_a_range_that_holds_its_default():
    keys = [(k, f, d) for k, f, tp, d in _fields(Params) if _numeric(tp)]
    assert len(keys) > 100  # the walk found the schema, not an empty class
    undeclared = [k for k, f, _ in keys if field_range(f) is None]
    assert not undeclared, f"numeric keys without a declared range: {undeclared}"
    for key, f, default in keys:
        values = default if isinstance(default, tuple) else (default,)
        for v in values:
            if isinstance(v, int | float) and not isinstance(v, bool):
                assert v in field_range(f), (key, v, str(field_range(f)))


def test_the_committed_params_load():
    params = load_params(ROOT / "params.yaml")
    assert params.cv.n_folds == 2 and params.cv.folds == (0, 1)


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ({"faces": {"frames": -5}}, "key 'faces.frames' must be in [1, 10000], got -5"),
        ({"faces": {"margin": -1}}, "key 'faces.margin' must be in [0, 2], got -1"),
        ({"cv": {"n_folds": -2, "folds": []}}, "key 'cv.n_folds' must be in [2, 1000], got -2"),
        ({"cv": {"n_folds": 0, "folds": []}}, "key 'cv.n_folds' must be in [2, 1000], got 0"),
        ({"cv": {"n_folds": 1, "folds": [0]}}, "key 'cv.n_folds' must be in [2, 1000], got 1"),
        (
            {"faces": {"thresholds": [0.6, 1.7, 0.8]}},
            "key 'faces.thresholds' must be in [0, 1], got 1.7 in [0.6, 1.7, 0.8]",
        ),
        ({"train": {"lr": 0}}, "key 'train.lr' must be in (0, 10], got 0"),
    ],
)
def test_a_value_out_of_its_range_is_one_line_naming_key_value_and_range(tmp_path, raw, line):
    path = tmp_path / "params.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    with pytest.raises(ConfigError) as err:
        load_params(path)
    msg = str(err.value)
    assert msg == f"{path}: {line}" and "\n" not in msg


def test_the_copies_probability_is_named_where_it_was_written():
    """CompressTrainConfig sits in train and in sequence; its error once named 'compress.p'."""
    with pytest.raises(ConfigError, match=r"key 'train\.compress\.p' must be in \[0, 1\]"):
        params_from_dict({"train": {"compress": {"p": 1.5}}})
    with pytest.raises(ConfigError, match=r"key 'sequence\.compress\.p' must be in \[0, 1\]"):
        params_from_dict({"sequence": {"compress": {"p": -0.1}}})


def test_rules_between_keys_are_checked_at_load():
    with pytest.raises(ConfigError) as err:
        params_from_dict({"cv": {"n_folds": 2, "folds": [0, 1, 2]}})
    assert str(err.value) == (
        "params.yaml: key 'cv.folds' lists fold(s) [2], but cv.n_folds 2 has folds 0..1"
    )
    # The default folds (0..3) with 2 folds: the same rule, not a crash in the train stage.
    with pytest.raises(ConfigError, match=r"cv\.folds"):
        params_from_dict({"cv": {"n_folds": 2}})
    with pytest.raises(ConfigError, match=r"key 'data\.source' must be one of 'sample'"):
        params_from_dict({"data": {"source": "s3"}})
    # A rule inside a section names the file too.
    with pytest.raises(ConfigError) as err:
        params_from_dict({"train": {"model": {"wsdan_crop": [0.7, 0.2]}}})
    assert str(err.value).startswith("params.yaml: train.model.wsdan_crop must be")
    with pytest.raises(ConfigError) as err:
        params_from_dict({"robustness": {"mix": [3]}})
    assert str(err.value) == "params.yaml: key 'robustness.mix' must be in [1, 2], got 3 in [3]"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_an_empty_params_file_is_an_error_not_the_defaults(tmp_path, capsys, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="no sections"):
        load_params(path)
    assert main(["folds", "--params", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no sections" in err and "\n" not in err


def test_a_sectionless_params_file_is_an_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping of sections"):
        load_params(path)
    path.write_text("frames: -5\n")
    with pytest.raises(ConfigError, match="unknown key 'frames'"):
        load_params(path)


def test_train_of_a_fold_beyond_n_folds_is_one_line(tmp_path, capsys):
    """``dfdc train --fold 5`` with 2 folds: one line before anything is read (there is no
    data here at all: the check comes first)."""
    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    path.write_text(text)
    for command in ("train", "train_sequence"):
        assert main([command, "--fold", "5", "--params", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"dfdc {command}: error: fold 5: cv.n_folds is 2, so a fold is one of 0..1")
    assert main(["train", "--fold", "-1", "--params", str(path)]) == 2
    assert "fold -1" in capsys.readouterr().err


def test_every_json_written_is_strict(tmp_path):
    obj = {"a": float("nan"), "b": [1.0, float("inf"), -float("inf")], "c": np.float32("nan"),
           "d": np.array([0.5, np.nan]), "e": (np.int64(3), "x"), "f": None}  # fmt: skip
    write_json(obj, tmp_path / "x.json")
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert back == {"a": None, "b": [1.0, None, None], "c": None, "d": [0.5, None],
                    "e": [3, "x"], "f": None}  # fmt: skip
    assert json.loads(to_json({"x": math.nan})) == {"x": None}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text("x", tmp_path / "a.txt")
        write_json({}, tmp_path / "b.json")
        with atomic_path(tmp_path / "c.bin") as tmp:
            tmp.write_bytes(b"1")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what open() gives, for comparison
    finally:
        os.umask(old)
    for name in ("a.txt", "b.json", "c.bin", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert not list(Path(tmp_path).glob(".*.tmp"))
