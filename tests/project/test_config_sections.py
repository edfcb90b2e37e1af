"""A stage depends on the configuration sections it reads, not on every section the loader
parses (:mod:`dfdc.core.fingerprint`, "Configuration is read by section").

Statically: a key added to a section's schema changes the code of the stages that read that
section only. At run time: every section a stage reads while it runs is in its code
fingerprint (the static rule errs toward more, never fewer).
"""

from __future__ import annotations

import dataclasses
import shutil
from typing import ClassVar

import pytest

from dfdc.core.config import Params
from dfdc.core.fingerprint import Sources
from dfdc.stages import STAGES, stage_module
from tests.conftest import ROOT, tiny_params

SECTIONS = {f.name for f in dataclasses.fields(Params)}


@pytest.fixture(scope="module")
def sources() -> Sources:
    return Sources(ROOT / "src", ROOT)


def _sections(sources: Sources, stage: str) -> set[str]:
    table = {m: s for s, m in sources.section_modules().items()}
    return {table[m] for m in sources.stage_code(STAGES[stage]) if m in table}


def test_every_section_has_its_module_and_the_loader_lists_them_all(sources):
    assert set(sources.section_modules()) == SECTIONS


@pytest.mark.parametrize(
    ("stage", "not_read"),
    [
        ("faces", {"train", "sequence", "compress", "ensemble", "robustness", "evaluate"}),
        ("folds", {"faces", "train", "sequence", "robustness", "ensemble"}),
        ("train", {"robustness", "evaluate", "package", "ensemble", "inference", "eda"}),
        ("ensemble", {"robustness", "evaluate", "package", "eda"}),
    ],
)
def test_a_stage_s_code_holds_the_sections_it_reads_and_not_the_others(sources, stage, not_read):
    """A new key in the robustness section once made all 15 stages stale (every stage's code
    held all of config.py); now it reruns the stages that read that section."""
    held = _sections(sources, stage)
    assert stage in held or STAGES[stage].module.rpartition(".")[2] not in SECTIONS
    assert not held & not_read, sorted(held & not_read)


class _Reading(Params):
    """Params that note every section read from them."""

    read: ClassVar[set[str]] = set()

    def __getattribute__(self, name: str):
        if name in SECTIONS:
            type(self).read.add(name)
        return super().__getattribute__(name)


def _reading(params: Params) -> _Reading:
    _Reading.read = set()
    return _Reading(**{f.name: getattr(params, f.name) for f in dataclasses.fields(Params)})


@pytest.mark.parametrize("stage", ["folds", "faces"])
def test_what_a_stage_reads_at_run_time_is_in_its_code(sources, tiny_stage, tmp_path, stage):
    """The static rule against the real stage on the tiny sample: each section its ``run``
    reads is one whose module its fingerprint holds."""
    ws = tmp_path / "ws"
    shutil.copytree(tiny_stage / "faces", ws / "faces")  # the faces stage resumes them
    for name in ("videos.parquet", "faces.parquet", "faces_status.parquet"):
        shutil.copy(tiny_stage / name, ws / name)
    params = _reading(tiny_params(ws))
    stage_module(stage).run(params)
    assert _Reading.read, "nothing was read: the recording is broken"
    assert _Reading.read <= _sections(sources, stage), sorted(_Reading.read)
