"""Reading ``params.yaml``: :func:`load_params` into :class:`Params`, one frozen dataclass a
section (each defined in its own module of :mod:`dfdc.core.sections`), and the helpers every
stage shares (output redirection for scratch runs, device resolution, the run sections).

Only this module opens ``params.yaml``. Every section is frozen, so a stage cannot mutate what
another stage reads; the generic loader (:mod:`dfdc.core.typed`) checks every key, the rules
between keys are checked here, and the ``train`` section starts from its recipe and method
(:func:`dfdc.core.sections.train.preset_base`). The section classes are importable from here
too; a stage's code fingerprint counts the sections it reads, not every one this module lists.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dfdc.core.sections.base import BaseConfig
from dfdc.core.sections.compress import CompressConfig
from dfdc.core.sections.cv import CvConfig
from dfdc.core.sections.data import DataConfig, KaggleSourceConfig, SampleConfig
from dfdc.core.sections.eda import EdaConfig
from dfdc.core.sections.ensemble import EnsembleConfig
from dfdc.core.sections.evaluate import EvaluateConfig
from dfdc.core.sections.faces import FacesConfig
from dfdc.core.sections.inference import InferenceConfig
from dfdc.core.sections.loop import CompressTrainConfig, LoopConfig
from dfdc.core.sections.masks import DiffMasksConfig
from dfdc.core.sections.model import ModelConfig
from dfdc.core.sections.package import PackageConfig
from dfdc.core.sections.robustness import RobustnessConfig
from dfdc.core.sections.sequence import SequenceConfig, SequenceRunConfig
from dfdc.core.sections.train import (
    AugConfig,
    MaskTrainConfig,
    SelfBlendConfig,
    TrainConfig,
    preset_base,
)
from dfdc.core.typed import ConfigError, build, to_dict

__all__ = [
    "OUTPUTS",
    "AugConfig",
    "BaseConfig",
    "CompressConfig",
    "CompressTrainConfig",
    "ConfigError",
    "CvConfig",
    "DataConfig",
    "DiffMasksConfig",
    "EdaConfig",
    "EnsembleConfig",
    "EvaluateConfig",
    "FacesConfig",
    "InferenceConfig",
    "KaggleSourceConfig",
    "LoopConfig",
    "MaskTrainConfig",
    "ModelConfig",
    "PackageConfig",
    "Params",
    "RobustnessConfig",
    "RunConfig",
    "SampleConfig",
    "SelfBlendConfig",
    "SequenceConfig",
    "SequenceRunConfig",
    "TrainConfig",
    "load_params",
    "params_from_dict",
    "redirect_outputs",
    "resolve_device",
    "run_config",
    "to_dict",
]

# Any run section's config: a model kind's ``config_class`` (dfdc.kinds.registry).
RunConfig = LoopConfig


@dataclass(frozen=True)
class Params:
    base: BaseConfig = field(default_factory=BaseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eda: EdaConfig = field(default_factory=EdaConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    cv: CvConfig = field(default_factory=CvConfig)
    masks: DiffMasksConfig = field(default_factory=DiffMasksConfig)
    compress: CompressConfig = field(default_factory=CompressConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # A second run, trained by the train_sequence stage: the temporal model.
    sequence: SequenceRunConfig = field(
        default_factory=lambda: SequenceRunConfig(
            run="lstm", epochs=30, batch_size=16, lr=3e-3, warmup_epochs=1.0
        )
    )
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    package: PackageConfig = field(default_factory=PackageConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


# Every key of params.yaml naming something a stage writes (or caches), with the name it takes
# in a work folder: ``redirect_outputs`` points them all there (benchmarks, tests, scratch
# runs), so nothing of such a run lands in the project's own data/, models/ or metrics/.
OUTPUTS: dict[str, str] = {
    "base.models_dir": "models",
    "data.raw_dir": "raw",
    "data.index_path": "videos.parquet",
    "faces.out_dir": "faces",
    "faces.table_path": "faces.parquet",
    "faces.status_path": "faces_status.parquet",
    "cv.path": "folds.parquet",
    "masks.out_dir": "masks",
    "masks.table_path": "masks.parquet",
    "compress.out_dir": "compressed",
    "compress.table_path": "compressed.parquet",
    "train.model.weights_dir": "weights",
    "sequence.sequence.cache_dir": "embeddings",
    "ensemble.submission_path": "submission.csv",
    "ensemble.ensemble_path": "ensemble.json",
    "ensemble.registry_dir": "registry",
    "ensemble.metrics_path": "cv.json",
    "ensemble.test_metrics_path": "test.json",
    "ensemble.plots_dir": "plots",
    "evaluate.metrics_path": "eval.json",
    "evaluate.plots_dir": "eval",
    "robustness.out_dir": "robustness_clips",
    "robustness.metrics_path": "robustness.json",
    "robustness.plots_dir": "robustness",
    "package.out_dir": "kernel",
    "inference.export_dir": "export",
}


def redirect_outputs(
    raw: dict[str, Any], work: str | Path, keep: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A copy of raw params whose every output (:data:`OUTPUTS`, less ``keep``) lies in
    ``work`` under its name there (``faces.table_path`` -> ``work/faces.parquet``).

    ``keep`` names outputs that stay as given, e.g. ``data.raw_dir`` for a run over a folder of
    videos that already exists. The one helper the benchmarks and the tests use for scratch runs.
    """
    out = copy.deepcopy(raw)
    for key, name in OUTPUTS.items():
        if key in keep:
            continue
        *sections, last = key.split(".")
        node = out
        for section in sections:
            if not isinstance(node.get(section), dict):
                node[section] = {}
            node = node[section]
        node[last] = str(Path(work) / name)
    return out


def resolve_device(device: str) -> str:
    """``base.device`` as torch names it: ``auto`` is CUDA when present, else the CPU."""
    if device == "auto":
        import torch  # here, so reading params.yaml does not import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check ``params.yaml``; raise :class:`ConfigError` with a one-line message.

    An empty file, or one with no section, is an error: running every stage on the built-in
    defaults (4 folds where the file said 2) is never what was meant."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not raw:
        raise ConfigError(
            f"{path}: no sections (empty file); it needs the sections of the project's "
            "params.yaml (base, data, faces, cv, ...)"
        )
    return params_from_dict(raw, source=str(path))


# Keys that were renamed: the old spelling stops the run with one line naming the new one.
RENAMED: dict[str, str] = {"ensemble.faces": "ensemble.faces_combine"}


def _check_renamed(raw: dict[str, Any], source: str) -> None:
    for old, new in RENAMED.items():
        section, key = old.split(".")
        if isinstance(raw.get(section), dict) and key in raw[section]:
            raise ConfigError(f"{source}: key {old!r} was renamed {new!r}")


def params_from_dict(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Typed, checked params; the ``train`` section starts from its recipe and method
    (:func:`dfdc.core.sections.train.preset_base`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the file must hold a mapping of sections")
    _check_renamed(raw, source)
    raw, base = preset_base(raw, source)
    params = build(Params, raw, prefix="", source=source, base=Params(train=base))
    if params.sequence.folds is None:  # not written: the frame run's folds
        sequence = dataclasses.replace(params.sequence, folds=params.cv.folds)
        params = dataclasses.replace(params, sequence=sequence)
    _check_across_keys(params, source)
    return params


def _check_across_keys(params: Params, source: str) -> None:
    """The rules between keys that one field's range cannot say (each key's own range is
    checked as it is read): every fold the train stage runs is one of ``cv.n_folds``; the
    sequence run's folds are the frame run's, all of them when it embeds out of fold."""
    cv = params.cv
    bad = [k for k in cv.folds if k >= cv.n_folds]
    if bad:
        raise ConfigError(
            f"{source}: key 'cv.folds' lists fold(s) {bad}, but cv.n_folds {cv.n_folds} has "
            f"folds 0..{cv.n_folds - 1}"
        )
    seq = params.sequence
    extra = [k for k in seq.folds if k not in cv.folds]
    if extra:
        raise ConfigError(
            f"{source}: key 'sequence.folds' lists fold(s) {extra} the frame run does not train "
            f"(cv.folds {list(cv.folds)})"
        )
    if seq.folds and seq.sequence.embed == "oof" and set(cv.folds) != set(range(cv.n_folds)):
        raise ConfigError(
            f"{source}: key 'sequence.sequence.embed' oof embeds each video with its own fold's "
            f"frame model, so cv.folds must hold every fold 0..{cv.n_folds - 1}, not "
            f"{list(cv.folds)} (or set embed: run)"
        )


def _run_section_names() -> tuple[str, ...]:
    """The params sections that are runs (a kind's run config, trained by a train stage):
    read off :class:`Params`, so a kind with a section of its own needs no list edited here."""
    hints = {f.name: f.default_factory for f in dataclasses.fields(Params)}
    return tuple(n for n, make in hints.items() if isinstance(make(), LoopConfig))


def run_config(params: Params, section: str) -> RunConfig:
    """The run a train stage trains: the ``train`` (frame) or ``sequence`` section."""
    names = _run_section_names()
    if section not in names:
        raise ConfigError(f"no run section {section!r} (one of {', '.join(names)})")
    return getattr(params, section)
