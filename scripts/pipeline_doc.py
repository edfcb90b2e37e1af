"""docs/pipeline.md's picture of the pipeline: ``dvc dag --md`` (a mermaid flowchart, which
GitHub and most Markdown viewers draw) put between the page's mermaid fences, the rest of the
page kept. ``tests/project/test_views.py`` fails when the page and dvc.yaml disagree.

    python scripts/pipeline_doc.py          # (make dag) -> docs/pipeline.md
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

BLOCK = re.compile(r"```mermaid\n.*?```", re.S)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc", default="docs/pipeline.md")
    args = ap.parse_args(argv)
    doc = Path(args.doc)
    mermaid = subprocess.run(
        ["dvc", "dag", "--md"], capture_output=True, text=True, check=True
    ).stdout.strip()
    text = doc.read_text()
    if not BLOCK.search(text):
        raise SystemExit(f"{doc}: no ```mermaid block to replace")
    doc.write_text(BLOCK.sub(lambda _: mermaid, text, count=1))
    print(f"{doc}: dvc dag --md written")


if __name__ == "__main__":
    main()
