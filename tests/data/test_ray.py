"""The Ray executor: the same per-video files and tables as the process pool, resume, a bad
video recorded while the rest finish, an unreachable cluster in one line, and scoring many
videos on Ray actors with the same scores as in-process."""

import dataclasses
import re
import socket
import time

import numpy as np
import pandas as pd
import pytest

from dfdc.core.executor import CONNECT_TIMEOUT_S, RayUnavailable, ray_session
from dfdc.dataset.index import build_index, collect_entries
from dfdc.faces.batch import run_faces
from dfdc.faces.pipeline import faces_params_hash
from dfdc.faces.store import load_video_faces
from tests.conftest import faces_cfg

ARRAYS = ("frame", "track", "box", "prob", "detected", "landmarks", "crop_box")


def _same_video_files(a_dir, b_dir):
    files = sorted(p.relative_to(a_dir) for p in a_dir.rglob("*.npz"))
    others = {p.relative_to(b_dir) for p in b_dir.rglob("*.npz")}
    assert files and {p.stem for p in others - set(files)} <= {"broken"}
    for rel in files:
        a, b = load_video_faces(a_dir / rel), load_video_faces(b_dir / rel)
        for key in ARRAYS:
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=f"{rel} {key}")
        assert a.crops == b.crops and a.params_hash == b.params_hash
        assert a.status == b.status
        assert (a_dir / rel).read_bytes() == (b_dir / rel).read_bytes()


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_cluster_is_one_line(scheme):
    # First in the module: later tests keep a local Ray running, which a session would reuse.
    # A port that refuses is named at once, before Ray is asked (ray.init waits some 20 s).
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(RayUnavailable, match=re.escape(address)) as info, ray_session(address):
        pass
    assert "\n" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert time.monotonic() - start < CONNECT_TIMEOUT_S + 2


def test_the_address_check_reads_ipv6_literals():
    """``[::1]:port`` is a host and a port, not a host named ``[::1]`` that no resolver knows."""
    import dfdc.core.executor as executor

    try:
        server = socket.socket(socket.AF_INET6)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        server.listen()
        port = server.getsockname()[1]
        assert executor._unreachable(f"[::1]:{port}") is None
        assert executor._unreachable(f"ray://[::1]:{port}") is None
    refused = executor._unreachable(f"[::1]:{port}")  # closed now
    assert refused is not None and refused.startswith(f"::1:{port}")


def test_a_cluster_ray_cannot_join_is_one_line(monkeypatch):
    """An address that takes the connection but where Ray fails (not a Ray head, a version
    mismatch): Ray's own error, however many lines, becomes one line naming the address."""
    import ray

    import dfdc.core.executor as executor

    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to connect to GCS at 10.0.0.9:6379\nTraceback: ...")

    monkeypatch.setattr(executor, "_unreachable", lambda address: None)  # it answers
    monkeypatch.setattr(ray, "init", refuse)
    with (
        pytest.raises(RayUnavailable, match=r"address '10\.0\.0\.9:6379'") as info,
        ray_session("10.0.0.9:6379"),
    ):
        pass
    assert "\n" not in str(info.value) and "Failed to connect to GCS" in str(info.value)


@pytest.fixture(scope="module")
def index(tiny_raw, tmp_path_factory):
    return build_index(collect_entries(tiny_raw / "train"), workers=1)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module: the stages find it running and use it
    (as they would a cluster they were pointed at) instead of starting their own each time."""
    with ray_session("local", num_cpus=2):
        yield


def test_ray_gives_the_pool_s_files_and_tables_and_resumes(index, tmp_path, local_ray):
    pool_cfg = faces_cfg(tmp_path / "pool", workers=2)
    ray_cfg = faces_cfg(tmp_path / "ray", workers=2, executor="ray")
    assert faces_params_hash(pool_cfg) == faces_params_hash(ray_cfg)  # same resume key
    pool_table = run_faces(index, pool_cfg)
    # The Ray run also meets a corrupt video: recorded, and the rest finish.
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    row = index.iloc[0].copy()
    row["name"], row["path"], row["original"] = "broken.mp4", str(broken), None
    ray_table = run_faces(pd.concat([index, row.to_frame().T], ignore_index=True), ray_cfg)
    status = pd.read_parquet(ray_cfg.status_path).set_index("video")
    assert status.loc["broken.mp4", "status"] in ("unreadable", "error")
    _same_video_files(tmp_path / "pool" / "faces", tmp_path / "ray" / "faces")
    key = ["video", "frame", "track"]
    pd.testing.assert_frame_equal(
        pool_table.drop(columns="file").sort_values(key).reset_index(drop=True),
        ray_table.drop(columns="file").sort_values(key).reset_index(drop=True),
    )
    # Interrupted: one video's file gone; the rerun redoes that one only.
    files = sorted(p for p in (tmp_path / "ray" / "faces").rglob("*.npz") if p.stem != "broken")
    stamps = {p: p.stat().st_mtime_ns for p in files}
    files[0].unlink()
    run_faces(index, ray_cfg)
    assert files[0].exists()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files[1:])


def test_scoring_many_videos_on_ray_equals_in_process(kernel_package, tiny_raw, local_ray):
    from dfdc.inference.predict import load_bundle

    params, _, _ = kernel_package
    paths = sorted((tiny_raw / "train").rglob("*.mp4"))[:3]
    bundle = load_bundle(params.base.models_dir, "cpu", ensemble=params.ensemble.ensemble_path)
    here = [p.prob for p in bundle.score_all(paths)]
    ray_faces = dataclasses.replace(params.faces, executor="ray", workers=2)
    there = [p.prob for p in bundle.score_all(paths, ray_faces)]
    assert here == pytest.approx(there, abs=1e-6)
