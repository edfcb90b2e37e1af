"""Logging for entry points (``dfdc`` and the stage notebooks); modules only get loggers.

Log lines go through ``tqdm.write`` so progress bars survive them. In a notebook stage the
kernel's stderr is streamed to the terminal by :func:`dfdc.core.notebooks.run_notebook`, so the same
lines and bars show under ``dvc repro`` and stay in the executed notebook.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "some"]


class _TqdmHandler(logging.Handler):
    """Log lines through tqdm, so progress bars are not broken by them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm  # write() is the same for text and widget bars

        tqdm.write(self.format(record), file=sys.stderr)


def setup_logging(verbose: bool = False) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("papermill", "traitlets", "nbclient", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def some(names: list[str], first: int = 3) -> str:
    """The first few of ``names`` and how many more, for a log line that names what it skipped
    (``a.mp4, b.mp4, c.mp4 and 5 more``) without listing thousands."""
    shown = ", ".join(names[:first])
    return f"{shown} and {len(names) - first} more" if len(names) > first else shown
