"""Shared fixtures: a tiny generated sample (built once per session) and the real clips.

Real clips live in ../shared/data next to the project and are read in place. One way to need
them: mark the test ``shared`` (or use a ``shared_*`` fixture, which marks it); such a test
skips with the reason where ../shared/data is absent, and ``-m "not shared"`` deselects it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfdc.core.config import (
    CvConfig,
    FacesConfig,
    SampleConfig,
    SequenceConfig,
    SequenceRunConfig,
    params_from_dict,
    redirect_outputs,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# The suite runs on any sample seed: DFDC_TEST_SAMPLE_SEED=N make test renders other videos
# (other names, scenes and jitter) for every test that generates data, so no assertion is
# tuned to one draw. Unset: the tiny sample uses 7 and the full-size tests params.yaml's seed.
SAMPLE_SEED = os.environ.get("DFDC_TEST_SAMPLE_SEED")

TINY_SAMPLE = SampleConfig(
    seed=int(SAMPLE_SEED or 7), parts=2, reals_per_part=1, test_reals=1, test_fakes=1,
    width=480, height=270, portrait_parts=(1,), frames=16,
)  # fmt: skip


SHARED_FIXTURES = {"shared_dfdc", "shared_metadata", "shared_ffpp_c23"}


@pytest.hookimpl(tryfirst=True)  # before -m selects, so -m "not shared" sees the mark
def pytest_collection_modifyitems(config, items):
    """A test that uses a shared-clips fixture is a ``shared`` test."""
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)


def pytest_runtest_setup(item):
    """Every ``shared`` test skips the same way where the clips are absent."""
    if item.get_closest_marker("shared") and not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present (real clips for the shared tests)")


@pytest.fixture(scope="session")
def shared_dfdc() -> Path:
    return SHARED / "dfdc"


@pytest.fixture(scope="session")
def shared_ffpp_c23() -> Path:
    return SHARED / "ffpp_c23"


@pytest.fixture(scope="session")
def shared_metadata() -> Path:
    return SHARED / "metadata"


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated sample in DFDC layout: 2 parts x (1 real + 2 fakes), 2 test videos."""
    from dfdc.dataset.sample import build_sample

    raw = tmp_path_factory.mktemp("sample") / "raw"
    build_sample(TINY_SAMPLE, raw, workers=1)
    return raw


def faces_cfg(tmp: Path, **overrides) -> FacesConfig:
    """The tiny sample's face settings, writing into ``tmp``."""
    base = params_from_dict(redirect_outputs({}, tmp)).faces
    return dataclasses.replace(base, **{"frames": 8, "detect_every": 4, "workers": 1, **overrides})


def write_params(path: Path, tmp: Path, **sections) -> Path:
    """A params.yaml whose outputs all land in ``tmp``, with the tiny sample."""
    params = {
        "data": {
            "source": "sample",
            "workers": 1,
            "sample": {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(TINY_SAMPLE).items()
            },
        },
        "faces": {"frames": 8, "workers": 1},
        "cv": {"n_folds": 2, "folds": [0, 1]},
        "train": {
            "epochs": 1,
            "batch_size": 8,
            "frames_per_video": 4,
            "model": {"backbone": "resnet10t", "input_size": 64},
        },
    }
    params = redirect_outputs(params, tmp, keep=("train.model.weights_dir",))
    for name, values in sections.items():
        params.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="session")
def tiny_stage(tmp_path_factory, tiny_raw):
    """The tiny sample's index, faces and 2 folds (by part) in a scratch folder."""
    from dfdc.core.io import write_parquet
    from dfdc.dataset.folds import make_folds
    from dfdc.dataset.index import build_index, collect_entries
    from dfdc.faces.batch import run_faces

    tmp = tmp_path_factory.mktemp("train")
    index = build_index(collect_entries(tiny_raw / "train"), workers=1)
    write_parquet(index, tmp / "videos.parquet")
    run_faces(index, faces_cfg(tmp))
    write_parquet(make_folds(index, CvConfig(n_folds=2)), tmp / "folds.parquet")
    return tmp


def tiny_params(tmp, **train):
    base = {"epochs": 2, "batch_size": 8, "frames_per_video": 4, "lr": 0.001}
    base["model"] = {"backbone": "resnet10t", "input_size": 64}
    base.update(train)
    raw = {
        # The same face settings that made the crops, as in a real params.yaml.
        "faces": to_dict(faces_cfg(tmp)),
        "cv": {"n_folds": 2, "folds": [0, 1]},
        "train": base,
    }
    return params_from_dict(redirect_outputs(raw, tmp, keep=("train.model.weights_dir",)))


def tiny_sequence_run(embed_run: str, cache_dir: Path, **run) -> SequenceRunConfig:
    """A sequence run over the crops of ``embed_run``'s fold models (each fold's own model:
    ``embed: run``, so a test trains one frame fold, not all of them as ``oof`` needs)."""
    return dataclasses.replace(
        SequenceRunConfig(
            run="tracks",
            epochs=2,
            batch_size=8,
            sequence=SequenceConfig(embed="run", embed_run=embed_run, cache_dir=str(cache_dir)),
        ),
        **run,
    )


@pytest.fixture(scope="session")
def kernel_package(tiny_stage, tmp_path_factory):
    """A packaged kernel (one fold of a frame run and of a sequence run, one batch of
    training each) for owner ``someone``, built while a KAGGLE_KEY is set so tests can check
    it leaks nowhere."""
    from dfdc.inference.fit import Ensemble
    from dfdc.inference.kernel import build_kernel
    from dfdc.training.loop import fit

    tmp = tmp_path_factory.mktemp("kernel")
    base = tiny_params(tiny_stage, run="kernel", epochs=1)
    fit(base, 0, max_batches=1)
    # A sequence run embedding with that frame model: the kernel carries both kinds.
    seq = tiny_sequence_run("kernel", tmp / "emb", run="kernel_seq", epochs=1)
    fit(base, 0, run=seq, max_batches=1)
    ens = Ensemble(["kernel", "kernel_seq"], [0.6, 0.4], clip=0.01)
    ens.save(tmp / "ensemble.json")
    raw = to_dict(base)
    raw["ensemble"].update(ensemble_path=str(tmp / "ensemble.json"))
    raw["package"] = {"owner": "someone", "out_dir": str(tmp / "package"), "time_videos": 0}
    params = params_from_dict(raw)
    os.environ["KAGGLE_KEY"] = "secret-key-should-not-leak"
    try:
        build_kernel(params)
    finally:
        os.environ.pop("KAGGLE_KEY")
    return params, tmp / "package", ens


@pytest.fixture
def fake_kaggle(monkeypatch, tmp_path):
    """A recording fake of Kaggle's API; the real client talks to it, with a known key."""
    from kagglesdk import kaggle_env

    from tests.fake_kaggle import FakeKaggle

    server = FakeKaggle().start()
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, server.url)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key-123")
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield server
    server.stop()


def run_offline_kernel(package: Path, raw: Path, tmp: Path) -> subprocess.CompletedProcess:
    """A packaged kernel's script run offline against a stand-in ``/kaggle/input`` in ``tmp``
    (the sample's test videos, the packaged code and models datasets); its submission lands in
    ``tmp/submission.csv``, its wheels in ``tmp/site``."""
    import shutil

    root = tmp / "input"
    comp = root / "deepfake-detection-challenge"
    comp.mkdir(parents=True)
    shutil.copytree(raw / "test_videos", comp / "test_videos")
    shutil.copy(raw / "sample_submission.csv", comp / "sample_submission.csv")
    shutil.copytree(package / "code", root / "dfdc-workspace-code")
    shutil.copytree(package / "models", root / "dfdc-workspace-models")
    env = {**os.environ, "KAGGLE_INPUT_ROOT": str(root), "DFDC_SITE": str(tmp / "site"),
           "DFDC_SUBMISSION": str(tmp / "submission.csv"), "PIP_NO_INDEX": "1"}  # fmt: skip
    script = str(package / "kernel" / "dfdc_inference.py")
    return subprocess.run(
        [sys.executable, script], cwd=tmp, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="session")
def four_kinds(tiny_stage, tmp_path_factory):
    """One fold each of a frame run, a sequence run embedding with it, an SRM run and a WS-DAN
    run (one batch of training each) and their checkpoints."""
    from dfdc.training.loop import fit

    tmp = tmp_path_factory.mktemp("export")
    base = tiny_params(tiny_stage, run="frame", epochs=1)
    fit(base, 0, max_batches=1)
    fit(base, 0, run=tiny_sequence_run("frame", tmp / "emb", run="seq", epochs=1), max_batches=1)
    for run, extra in (("srm", {"srm": True}), ("wsdan", {"wsdan_maps": 2})):
        model = {"backbone": "resnet10t", "input_size": 64, **extra}
        fit(tiny_params(tiny_stage, run=run, epochs=1, model=model), 0, max_batches=1)
    models_dir = Path(base.base.models_dir)
    paths = {r: models_dir / r / "fold0" / "best.pt" for r in ("frame", "seq", "srm", "wsdan")}
    return base, paths


def interrupt_in_second_epoch(monkeypatch) -> dict[str, int]:
    """Make the training loop stop with a KeyboardInterrupt as its second epoch starts (after
    the first epoch's ``last.pt`` is written): a run killed half-way, for resume tests. Returns
    the epoch counter (``n``: epochs started); set it past 2 to let later runs go on."""
    import dfdc.training.loop as engine

    real = engine.train_one_epoch
    calls = {"n": 0}

    def dies_in_second_epoch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(engine, "train_one_epoch", dies_in_second_epoch)
    return calls
