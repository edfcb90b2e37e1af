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

import pytest
import yaml

from dfdc.core.executor import GCS_GONE_AFTER_S
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
    """A clone of the project whose data stage's outputs are the tiny sample (8 videos, the
    test split's included: a run is still extracting when its first file lands, through three
    stopped runs), with 2 face workers and every frame of its 16-frame clips."""
    ws = tmp_path_factory.mktemp("kill") / "ws"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(ws)], check=True)
    raw = ws / "data" / "raw"
    shutil.copytree(tiny_raw, raw)
    index = build_index(collect_entries(raw / "train", raw / "test_videos"), workers=1)
    write_parquet(index, ws / "data" / "interim" / "videos.parquet")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["faces"].update(frames=16, workers=2, executor="pool", splits=["train", "test"])
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return ws


def _processes(marker: str) -> list[str]:
    """Live processes whose environment carries ``marker`` (pid and command line)."""
    needle = f"{MARK}={marker}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if needle not in (d / "environ").read_bytes().split(b"\0"):
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or a zombie
            continue
        found.append(f"{d.name}: {cmd[:160]}")
    return found


def _files(faces: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in faces.rglob("*.npz")}


class Run:
    """``dvc repro -s faces`` in ``ws``, in a new session (its own process group)."""

    def __init__(self, ws: Path, name: str) -> None:
        self.marker = f"{name}-{uuid.uuid4().hex}"
        self.out, self.err = ws / f".{name}.stdout", ws / f".{name}.stderr"
        env = {**os.environ, MARK: self.marker}
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

    def kill_all(self) -> None:
        """Whatever is left of the run (so a failing test leaves nothing behind either)."""
        for line in _processes(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)


def _stop(run: Run, sig: signal.Signals, faces: Path) -> dict[Path, int]:
    """Signal the run's process group; check nothing of it is left and nothing is written
    after. Returns the files that were finished."""
    os.killpg(run.proc.pid, sig)
    run.proc.wait(timeout=60)
    deadline = time.monotonic() + GONE_WITHIN_S
    while (left := _processes(run.marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"{sig.name}: still running {GONE_WITHIN_S} s after:\n" + "\n".join(left)
    done = _files(faces)
    time.sleep(1.0)
    assert _files(faces) == done, f"{sig.name}: files written after the run was stopped"
    return done


def test_a_stopped_run_leaves_nothing_behind_and_the_rerun_resumes(workspace):
    faces = workspace / "data" / "interim" / "faces"
    total = 8
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
            run.kill_all()


RAY_DRIVER = """
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
def test_ray_s_local_instance_goes_with_its_killed_driver(tmp_path):
    """The faces stage's Ray path as :func:`ray_session` and :class:`RayActors` run it: an
    actor busy, then the driver (the kernel, in a stage) killed; the head's processes, the
    actor's worker and raylet's agents follow it (the agents once lingered over a minute)."""
    marker = f"ray-{uuid.uuid4().hex}"
    env = {**os.environ, MARK: marker}
    driver = subprocess.Popen(
        [sys.executable, "-c", RAY_DRIVER], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert driver.stdout.readline().strip() == "up", "Ray did not start"
        running = _processes(marker)
        assert len(running) >= 4, running  # the driver, GCS, raylet, the actor's worker
        # The driver alone, as a kernel dies in a stage (its death signal, not its group's).
        driver.kill()
        driver.wait(timeout=30)
        within = GCS_GONE_AFTER_S + 5  # the agents give the GCS up, then exit
        deadline = time.monotonic() + within
        while (left := _processes(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        listed = "\n".join(left)
        assert not left, f"still running {within} s after the driver was killed:\n{listed}"
    finally:
        for line in _processes(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
