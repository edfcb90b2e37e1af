"""make install: uv installs the pins from the sources pip is configured with."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _uv_sources():
    spec = importlib.util.spec_from_file_location("uv_sources", ROOT / "scripts" / "uv_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pip_config_becomes_uv_flags():
    """Every index and find-links value of ``pip config list`` (files and PIP_* variables,
    lists split on whitespace) is one uv flag, each value once; other settings are not."""
    listing = "\n".join([
        ":env:.default-timeout='180'",
        ":env:.find-links='/opt/wheels'",
        "global.cert='/etc/ssl/certs/ca-certificates.crt'",
        "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
        "global.find-links='/opt/wheels'",
        "global.index-url='https://mirror.example/simple'",
    ])  # fmt: skip
    assert _uv_sources().sources(listing) == [
        "--find-links", "/opt/wheels",
        "--extra-index-url", "file:///opt/a/simple",
        "--extra-index-url", "file:///opt/b/simple",
        "--index-url", "https://mirror.example/simple",
    ]  # fmt: skip
    assert _uv_sources().sources("") == []


def test_the_script_reads_pip_itself(tmp_path):
    """Run as make install runs it: pip's own configuration (here a config file of the test's
    and no other), printed as shell words."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /srv/wheels\nextra-index-url = file:///srv/simple\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = str(conf)
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "uv_sources.py")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    flags = shlex.split(out.stdout)
    assert flags[flags.index("--find-links") + 1] == "/srv/wheels"
    assert flags[flags.index("--extra-index-url") + 1] == "file:///srv/simple"
