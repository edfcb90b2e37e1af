"""Shared fixtures: a tiny generated sample (built once per session) and the real clips.

Real clips live in ../shared/data next to the project; tests that need them skip cleanly in a
clone that has no such folder, and read them in place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dfdc.config import CvConfig, FacesConfig, SampleConfig, params_from_dict, to_dict

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

TINY_SAMPLE = SampleConfig(
    seed=7, parts=2, reals_per_part=1, test_reals=1, test_fakes=1,
    width=480, height=270, portrait_parts=(1,), frames=16,
)  # fmt: skip


@pytest.fixture(scope="session")
def shared_dfdc() -> Path:
    path = SHARED / "dfdc"
    if not path.is_dir():
        pytest.skip("../shared/data/dfdc is not present")
    return path


@pytest.fixture(scope="session")
def shared_metadata() -> Path:
    path = SHARED / "metadata"
    if not path.is_dir():
        pytest.skip("../shared/data/metadata is not present")
    return path


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated sample in DFDC layout: 2 parts x (1 real + 2 fakes), 2 test videos."""
    from dfdc.sample import build_sample

    raw = tmp_path_factory.mktemp("sample") / "raw"
    build_sample(TINY_SAMPLE, raw, workers=1)
    return raw


def faces_cfg(tmp: Path, **overrides) -> FacesConfig:
    base = FacesConfig(
        out_dir=str(tmp / "faces"),
        table_path=str(tmp / "faces.parquet"),
        status_path=str(tmp / "faces_status.parquet"),
        frames=8,
        detect_every=4,
        workers=1,
    )
    return dataclasses.replace(base, **overrides)


def write_params(path: Path, tmp: Path, **sections) -> Path:
    """A params.yaml whose outputs all land in ``tmp``, with the tiny sample."""
    params = {
        "data": {
            "source": "sample",
            "raw_dir": str(tmp / "raw"),
            "index_path": str(tmp / "videos.parquet"),
            "workers": 1,
            "sample": {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(TINY_SAMPLE).items()
            },
        },
        "faces": {
            "out_dir": str(tmp / "faces"),
            "table_path": str(tmp / "faces.parquet"),
            "status_path": str(tmp / "faces_status.parquet"),
            "frames": 8,
            "workers": 1,
        },
    }
    params["cv"] = {"n_folds": 2, "path": str(tmp / "folds.parquet"), "folds": [0, 1]}
    params["train"] = {
        "models_dir": str(tmp / "models"),
        "epochs": 1,
        "batch_size": 8,
        "frames_per_video": 4,
        "model": {"backbone": "resnet10t", "input_size": 64},
    }
    for name, values in sections.items():
        params.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="session")
def tiny_stage(tmp_path_factory, tiny_raw):
    """The tiny sample's index, faces and 2 folds (by part) in a scratch folder."""
    from dfdc.faces.extract import run_faces
    from dfdc.folds import make_folds
    from dfdc.index import build_index, collect_entries
    from dfdc.io import write_parquet

    tmp = tmp_path_factory.mktemp("train")
    index = build_index(collect_entries(tiny_raw / "train"), workers=1)
    write_parquet(index, tmp / "videos.parquet")
    run_faces(index, faces_cfg(tmp))
    write_parquet(make_folds(index, CvConfig(n_folds=2)), tmp / "folds.parquet")
    return tmp


def tiny_params(tmp, **train):
    base = {"epochs": 2, "batch_size": 8, "frames_per_video": 4, "lr": 0.001}
    base["models_dir"] = str(tmp / "models")
    base["model"] = {"backbone": "resnet10t", "input_size": 64}
    base.update(train)
    return params_from_dict(
        {
            # The same face settings that made the crops, as in a real params.yaml.
            "faces": to_dict(faces_cfg(tmp)),
            "cv": {"n_folds": 2, "path": str(tmp / "folds.parquet"), "folds": [0, 1]},
            "data": {"index_path": str(tmp / "videos.parquet")},
            "train": base,
        }
    )
