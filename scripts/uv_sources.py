"""The package sources pip is configured with, as uv flags (make install).

``make install`` installs the pinned environment with uv: pip installs its 264 wheels one at a
time on one core (about 210 s of a fresh ``make repro`` on 2 cores), uv in parallel (about
60 s, docs/tests.md). uv reads no pip configuration, so a machine whose pip is pointed at local
mirrors (``pip config``: index-url, extra-index-url, find-links, from files or ``PIP_*``
variables) would have uv download from PyPI what lies on its disk (a CUDA torch: gigabytes).
This prints pip's sources as uv's flags; with none configured it prints nothing and uv uses
PyPI, as pip would.

    python scripts/uv_sources.py   # -> --extra-index-url file:///opt/pypi/simple ...
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

# pip's option -> uv's flag (uv pip install takes each of them, repeated).
FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
}
LINE = re.compile(r"^[^.\s]*\.(?P<key>[\w-]+)='(?P<value>.*)'$")


def sources(config_list: str) -> list[str]:
    """uv flags for the index and find-links entries of ``pip config list``'s output (values
    are whitespace-separated lists; the same value from two places is given once)."""
    flags: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line in config_list.splitlines():
        m = LINE.match(line.strip())
        if not m or m["key"] not in FLAGS:
            continue
        for value in m["value"].split():
            key = (FLAGS[m["key"]], value)
            if key not in seen:
                seen.add(key)
                flags += list(key)
    return flags


def main() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    print(shlex.join(sources(out.stdout if out.returncode == 0 else "")))


if __name__ == "__main__":
    main()
