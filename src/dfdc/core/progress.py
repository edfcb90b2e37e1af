"""Progress bars that suit where the code runs: a widget bar in an interactive Jupyter kernel
(JupyterLab), a text bar on the terminal and under papermill.

``tqdm.auto`` alone would draw widgets under papermill too, where nobody sees them: the
executed notebook keeps a dead widget and ``dvc repro``'s terminal gets nothing. So
:func:`dfdc.core.notebooks.run_notebook` sets ``DFDC_PROGRESS=text`` for the kernels it starts,
and every bar of the package comes from :func:`progress`.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PROGRESS_ENV", "progress"]

PROGRESS_ENV = "DFDC_PROGRESS"


def progress(iterable: Any = None, **kwargs: Any):
    """A ``tqdm`` bar over ``iterable`` (same arguments): text when ``DFDC_PROGRESS=text``,
    else whatever ``tqdm.auto`` picks (a widget in Lab, text on a terminal)."""
    if os.environ.get(PROGRESS_ENV) == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
