from pathlib import Path

import pytest
import yaml

from dfdc.cli import main
from dfdc.core.config import ConfigError, Params, load_params, params_from_dict
from tests.conftest import ROOT


def test_repo_params_load_and_match_defaults_types():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert params.data.source == "sample"
    assert params.faces.thresholds == (0.6, 0.7, 0.8)
    assert isinstance(params.faces.margin, float)


def test_unknown_key_names_it_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        params_from_dict({"data": {"sourc": "sample"}})
    msg = str(err.value)
    assert "unknown key 'data.sourc'" in msg
    assert "did you mean 'data.source'" in msg
    assert "\n" not in msg


def test_unknown_section():
    with pytest.raises(ConfigError, match="unknown key 'facez'"):
        params_from_dict({"facez": {}})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"faces": {"frames": "32"}}, "'faces.frames' must be an integer"),
        ({"faces": {"frames": True}}, "'faces.frames' must be an integer"),
        ({"faces": {"margin": "wide"}}, "'faces.margin' must be a number"),
        ({"data": {"source": "s3"}}, "'data.source' must be one of"),
        ({"faces": {"thresholds": [0.6, 0.7]}}, "'faces.thresholds' must have 3 items"),
        ({"faces": {"reuse_original_boxes": "yes"}}, "must be true or false"),
        ({"data": {"sample": 3}}, "'data.sample' must be a mapping"),
    ],
)
def test_mistyped_values(raw, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        params_from_dict(raw)


def test_int_accepted_where_float_expected():
    assert params_from_dict({"faces": {"margin": 1}}).faces.margin == 1.0


def test_config_is_frozen():
    params = params_from_dict({})
    with pytest.raises(AttributeError):
        params.faces.margin = 0.5  # type: ignore[misc]


def test_cli_reports_bad_key_in_one_line(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text("data:\n  sorce: sample\n")
    assert main(["data", "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "unknown key 'data.sorce'" in err


def test_cli_reports_invalid_yaml(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    assert main(["data", "--params", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_a_partial_sequence_section_keeps_the_sequence_defaults():
    from dfdc.core.config import run_config

    params = params_from_dict({"sequence": {"epochs": 3, "sequence": {"rnn": "gru"}}})
    seq = run_config(params, "sequence")
    assert seq.epochs == 3 and seq.run == "lstm" and seq.kind == "sequence"
    assert seq.sequence.rnn == "gru" and seq.sequence.bidirectional and seq.lr == 3e-3
    assert run_config(params, "train") is params.train and params.train.kind == "frame"
    with pytest.raises(ConfigError, match=r"sequence\.sequence\.rnn"):
        params_from_dict({"sequence": {"sequence": {"rnn": "transformer"}}})
    # Keys that mean nothing to a sequence run are errors, not silently inert.
    with pytest.raises(ConfigError, match=r"unknown key 'sequence\.aug'"):
        params_from_dict({"sequence": {"aug": {"flip_p": 0.5}}})
    with pytest.raises(ConfigError, match=r"unknown key 'train\.model\.sequence'"):
        params_from_dict({"train": {"model": {"sequence": {}}}})


def test_train_recipe_follows_the_data_source_and_keys_override_it():
    from dfdc.core.config import to_dict
    from dfdc.core.presets import RECIPES
    from dfdc.kinds.registry import run_config_from_dict as run_from_dict

    sample = load_params(ROOT / "params.yaml").train
    assert sample.recipe == "sample"
    assert sample.model.input_size == RECIPES["sample"]["model"]["input_size"]
    assert sample.balance == "sample" and sample.aug.jpeg_p > 0
    # The contract: a FaceForensics++ root trains with the real-data recipe.
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"].update(source="ffpp", local_path="/data/ffpp")
    real = params_from_dict(raw).train
    assert real.recipe == "real"
    assert (real.model.input_size, real.balance, real.keep) == (224, "pairs", "last")
    assert real.aug.jpeg_p == 0 and real.aug.flip_p == 0.5
    # Real data trains on the compress stage's copies too; the sample (which has none) does not.
    assert real.compress.p > 0 and sample.compress.p == 0
    assert real.label_smoothing == 0.1  # the folds were overconfident without it
    # Keys written in the section win over the recipe; the recipe can be named outright.
    raw["train"].update(epochs=2, model={**raw["train"]["model"], "input_size": 160})
    tuned = params_from_dict(raw).train
    assert (tuned.epochs, tuned.model.input_size, tuned.balance) == (2, 160, "pairs")
    raw["train"]["recipe"] = "sample"
    assert params_from_dict(raw).train.model.input_size == 160
    assert params_from_dict(raw).train.balance == "sample"
    # A checkpoint's saved run config rebuilds the same run (no recipe applied again).
    assert run_from_dict(to_dict(real)) == real
    with pytest.raises(ConfigError, match=r"train\.recipe"):
        params_from_dict({"train": {"recipe": "fast"}})


def test_a_training_method_is_picked_by_name_and_its_keys_still_win():
    """``train.method`` (``dvc exp run -S train.method=sbi``) lays the method's switches over
    the recipe; a key written in params.yaml still overrides the method's."""
    sbi = params_from_dict({"train": {"method": "sbi"}}).train
    assert (sbi.method, sbi.sbi.p, sbi.sbi.only) == ("sbi", 0.5, False)
    assert sbi.epochs == params_from_dict({}).train.epochs  # the recipe is untouched
    masks = params_from_dict({"train": {"method": "masks"}}).train
    assert masks.masks.weight == 1.0 and masks.masks.guide_dropout
    assert masks.aug.part_dropout_p == 0.3
    own = params_from_dict({"train": {"method": "wsdan", "model": {"wsdan_maps": 4}}}).train
    assert own.model.wsdan_maps == 4
    with pytest.raises(ConfigError, match=r"key 'train.method' must be one of .*'srm', got 'x'"):
        params_from_dict({"train": {"method": "x"}})


def test_outputs_are_every_path_params_yaml_writes(tmp_path):
    """``redirect_outputs`` knows every output key: each has the schema's default in
    params.yaml, and every path-like key of params.yaml is an output or a named input."""
    from dfdc.core.config import OUTPUTS, redirect_outputs

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    inputs = {"data.local_path", "train.model.pretrained_file"}

    def keys(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from keys(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    pathlike = {k for k, _ in keys(raw) if k.rsplit(".", 1)[-1].endswith(("_path", "_dir", "path"))}
    assert pathlike - inputs == set(OUTPUTS)
    redirected = params_from_dict(redirect_outputs(raw, tmp_path))
    for key in OUTPUTS:
        value = redirected
        for part in key.split("."):
            value = getattr(value, part)
        assert Path(value).parent == tmp_path, key
    assert len({v for v in OUTPUTS.values()}) == len(OUTPUTS)  # no two outputs collide


def test_a_renamed_key_names_the_new_one():
    with pytest.raises(
        ConfigError, match=r"'ensemble\.faces' was renamed 'ensemble\.faces_combine'"
    ):
        params_from_dict({"ensemble": {"faces": "max"}})


def test_an_ensemble_json_of_the_old_spelling_still_loads(tmp_path):
    import json

    from dfdc.inference.ensemble import Ensemble

    path = tmp_path / "ensemble.json"
    path.write_text(json.dumps({"runs": ["a"], "weights": [1.0], "rule": "mean", "faces": "mean"}))
    assert Ensemble.load(path).faces_combine == "mean"
