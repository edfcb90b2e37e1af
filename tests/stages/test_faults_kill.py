"""A stopped run leaves nothing running and nothing half-written, and the next run resumes.

``dvc repro -s faces`` in a clone of the project (the faces notebook under papermill, its pool
of 2 workers below the kernel), on the tiny generated sample, in a process group of its own as a
shell starts it. Once a new video's file is written, the whole group gets SIGKILL, then (on the
next run, which resumes) SIGTERM, then SIGINT, then a last run completes. Each time, within a few
seconds no process of the run is left (the kernel runs in a session of its own, out of the
group's reach: it must die with its parent, and its workers with it), no file is written after,
and a stop by SIGTERM or SIGINT says so in one line, no traceback. The last run keeps every file
the stopped runs finished and leaves no temporary file in the DVC output.

A run's processes are found by a variable only its environment carries (everything below
``dvc repro`` inherits it), read from ``/proc``: Linux only.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dfdc.core.io import write_parquet
from dfdc.dataset.index import build_index, collect_entries
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="finds the run's processes through /proc"
)

MARK = "DFDC_FAULT_RUN"  # the environment variable that tells this test's processes apart
GONE_WITHIN_S = 5.0  # SIGKILL of a parent is immediate; the rest is the kernel's own exit


@pytest.fixture(scope="module")
def workspace(tiny_raw, tmp_path_factory) -> Path:
    """A clone of the project whose data stage's outputs are the tiny sample with its test
    videos copied under 6 more names each (20 videos: a run is still extracting when its
    first file lands, through three stopped runs, on a fast CPU too; with the sample's 8 the
    third run once finished first), with 2 face workers and every frame of its 16-frame
    clips."""
    ws = tmp_path_factory.mktemp("kill") / "ws"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(ws)], check=True)
    raw = ws / "data" / "raw"
    shutil.copytree(tiny_raw, raw)
    for video in sorted((raw / "test_videos").glob("*.mp4")):
        for letter in "abcdef":
            shutil.copy(video, video.with_name(f"{video.stem}{letter}.mp4"))
    index = build_index(collect_entries(raw / "train", raw / "test_videos"), workers=1)
    write_parquet(index, ws / "data" / "interim" / "videos.parquet")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["faces"].update(frames=16, workers=2, executor="pool", splits=["train", "test"])
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return ws


def _processes(marker: str, folder: Path) -> list[str]:
    """Live processes whose environment carries ``marker`` or whose working folder is in
    ``folder`` (a process that renames itself, as Ray's do, may overwrite where /proc reads
    its environment from), as pid and command line."""
    needle = f"{MARK}={marker}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ours = needle in (d / "environ").read_bytes().split(b"\0")
            ours = ours or Path(os.readlink(d / "cwd")).is_relative_to(folder)
            if not ours:
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, a zombie, or not ours to read
            continue
        found.append(f"{d.name}: {cmd[:160]}")
    return found


def _kill_left(marker: str, folder: Path) -> None:
    """Whatever is left (so a failing test leaves nothing behind either)."""
    for line in _processes(marker, folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)


def _gone(marker: str, folder: Path, within: float) -> list[str]:
    """What is still running ``within`` seconds from now (nothing, as soon as that is so)."""
    deadline = time.monotonic() + within
    while (left := _processes(marker, folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _files(faces: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in faces.rglob("*.npz")}


class Run:
    """``dvc repro -s faces`` in ``ws``, in a new session (its own process group)."""

    def __init__(self, ws: Path, name: str) -> None:
        self.ws, self.marker = ws, f"{name}-{uuid.uuid4().hex}"
        self.out, self.err = ws / f".{name}.stdout", ws / f".{name}.stderr"
        # DVC runs a stage's command through $SHELL (else /bin/sh). Bash hands the command's
        # own status on (130 after Ctrl-C); dash, Debian's /bin/sh, takes the group's SIGINT
        # itself and dies of it once the command ends, so DVC says -2 there. Pinned: the line
        # this test reads is the command's, not the shell's.
        env = {**os.environ, MARK: self.marker, "SHELL": "/bin/bash"}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                ["dvc", "repro", "-s", "faces"], cwd=ws, env=env, stdout=out, stderr=err,
                start_new_session=True,
            )  # fmt: skip

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_for_new_file(self, faces: Path, before: dict, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not set(_files(faces)) - set(before):
            assert self.proc.poll() is None, f"the run ended before a file:\n{self.stderr()}"
            assert time.monotonic() < deadline, f"no file in {timeout} s:\n{self.stderr()}"
            time.sleep(0.05)


def _stop(run: Run, sig: signal.Signals, faces: Path) -> dict[Path, int]:
    """Signal the run's process group; check nothing of it is left and nothing is written
    after. Returns the files that were finished."""
    os.killpg(run.proc.pid, sig)
    run.proc.wait(timeout=60)
    left = _gone(run.marker, run.ws, GONE_WITHIN_S)
    assert not left, f"{sig.name}: still running {GONE_WITHIN_S} s after:\n" + "\n".join(left)
    done = _files(faces)
    time.sleep(1.0)
    assert _files(faces) == done, f"{sig.name}: files written after the run was stopped"
    return done


def test_a_stopped_run_leaves_nothing_behind_and_the_rerun_resumes(workspace):
    faces = workspace / "data" / "interim" / "faces"
    total = len(pd.read_parquet(workspace / "data" / "interim" / "videos.parquet"))
    assert total == 20
    kept: dict[Path, int] = {}
    runs: list[Run] = []
    try:
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            run = Run(workspace, sig.name)
            runs.append(run)
            run.wait_for_new_file(faces, kept)
            done = _stop(run, sig, faces)
            assert len(done) < total, f"{sig.name}: the run finished before it was stopped"
            # Resumed: what the runs before finished is still there, untouched.
            assert {p: done.get(p) for p in kept} == kept, f"{sig.name}: finished files redone"
            kept = done
            if sig != signal.SIGKILL:
                err = run.stderr()
                lines = [line for line in err.splitlines() if "interrupted by" in line]
                assert "Traceback" not in err + run.out.read_text(errors="replace"), err
                assert len(lines) == 1 and f"interrupted by {sig.name}" in lines[0], err
                assert lines[0].startswith("dfdc notebook: "), err  # on a line of its own
                if sig == signal.SIGINT:  # DVC outlives a Ctrl-C and reports the status
                    assert "exited with 130" in err, err
        last = Run(workspace, "rerun")
        runs.append(last)
        assert last.proc.wait(timeout=600) == 0, last.stderr()
        assert "already extracted" in last.stderr()
        final = _files(faces)
        assert len(final) == total
        assert {p: final[p] for p in kept} == kept, "the rerun redid files the stopped runs kept"
        assert not [p for p in faces.rglob("*") if p.is_file() and p.suffix != ".npz"]
    finally:
        for run in runs:
            _kill_left(run.marker, run.ws)


RAY_NOTEBOOK = """
# %%
import time

from dfdc.core.executor import RayActors, ray_session


class Sleeper:
    def ready(self):
        return True

    def run(self, seconds):
        time.sleep(seconds)


with ray_session("local", num_cpus=1):
    actors = RayActors(Sleeper, (), 1)
    busy = actors.actors[0].run.remote(120)
    print("up", flush=True)
    time.sleep(120)
"""


@pytest.mark.slow  # Ray's local instance takes 10-30 s to start on 2 cores
def test_a_killed_run_takes_its_ray_instance_along(tmp_path):
    """The faces stage's Ray path (:func:`ray_session`, :class:`RayActors`, an actor busy) in a
    notebook run as ``dfdc notebook`` runs it, whose process group gets SIGKILL: the kernel
    (Ray's driver) dies with it, and the instance, its actor and raylet's agents (which alone
    would outlive their driver for a minute) with the kernel's group."""
    notebook = tmp_path / "busy_actor.py"  # not ray.py: the kernel would import it as ray
    notebook.write_text(RAY_NOTEBOOK)
    marker = f"ray-{uuid.uuid4().hex}"
    code = f"from dfdc.core.notebooks import run_notebook; run_notebook({str(notebook)!r}, " \
        f"{str(tmp_path / 'busy_actor.ipynb')!r}, html=False)"  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, MARK: marker},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        for line in parent.stdout:  # the kernel's output, streamed
            if line.strip() == "up":
                break
        else:
            pytest.fail("the notebook ended before Ray was up")
        running = _processes(marker, tmp_path)
        # The parent, its kernel and the reaper; Ray's GCS, raylet, agents and the actor.
        assert len(running) >= 7, running
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        left = _gone(marker, tmp_path, GONE_WITHIN_S)
        assert not left, f"still running {GONE_WITHIN_S} s after:\n" + "\n".join(left)
    finally:
        _kill_left(marker, tmp_path)
