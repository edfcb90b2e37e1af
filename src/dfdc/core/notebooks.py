"""Run a jupytext ``.py`` notebook with papermill and keep the executed ``.ipynb`` and HTML.

Stages call this instead of ``papermill`` on the command line so that a failing cell becomes one
line naming the notebook, the cell and the error, and so tests can run every notebook. The
kernel's stdout and stderr (progress bars, epoch lines) stream to this process's terminal while
it runs, so ``dvc repro`` shows a long training stage as it goes; the executed notebook keeps
them too.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from dfdc.core.errors import UserError
from dfdc.core.progress import PROGRESS_ENV

log = logging.getLogger(__name__)

__all__ = ["NotebookError", "notebook_html", "run_notebook"]

# nbconvert's lab page with every block that loads from a CDN left empty, so an executed
# notebook's HTML opens offline: require.js (only ipywidgets and old JavaScript outputs use it;
# the stages' progress bars are text), MathJax (no notebook here typesets math: TeX would show as
# written), mermaid's loader and the widgets' renderer. Pictures are inlined by nbconvert already.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


class NotebookError(UserError, RuntimeError):
    """A notebook cell raised; the message is one line."""


def run_notebook(
    src: str | Path,
    dst: str | Path,
    parameters: dict[str, Any] | None = None,
    cwd: str | Path | None = None,
    html: bool = True,
    stream: bool = True,
) -> Path:
    """Execute ``src`` (jupytext percent ``.py`` or ``.ipynb``) into ``dst`` (``.ipynb``)."""
    import jupytext
    import nbformat
    import papermill as pm

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    with tempfile.TemporaryDirectory() as tmp:
        src_nb = Path(tmp) / (src.stem + ".ipynb")
        out_nb = Path(tmp) / ("out-" + src.stem + ".ipynb")
        nbformat.write(nb, src_nb)
        # The kernel inherits this process's environment: text progress bars, streamed below.
        previous = os.environ.get(PROGRESS_ENV)
        os.environ[PROGRESS_ENV] = "text"
        try:
            pm.execute_notebook(
                str(src_nb),
                str(out_nb),
                parameters=parameters or {},
                kernel_name="python3",
                cwd=str(cwd) if cwd else None,
                progress_bar=False,
                log_output=False,
                stdout_file=sys.stdout if stream else None,
                stderr_file=sys.stderr if stream else None,
            )
        except pm.PapermillExecutionError as exc:
            # Keep the failed notebook: it shows where it broke.
            out_nb.replace(dst)
            first_line = str(exc.evalue).splitlines()[0] if exc.evalue else ""
            raise NotebookError(
                f"{src}: cell {exc.exec_count} raised {exc.ename}: {first_line}"
                f" (executed notebook: {dst})"
            ) from None
        finally:
            if previous is None:
                os.environ.pop(PROGRESS_ENV, None)
            else:
                os.environ[PROGRESS_ENV] = previous
        out_nb.replace(dst)
    if html:
        dst.with_suffix(".html").write_text(notebook_html(dst))
    log.info("executed %s -> %s", src, dst)
    return dst


def notebook_html(path: str | Path) -> str:
    """An executed notebook as one self-contained page that loads nothing from the network
    (:data:`OFFLINE_TEMPLATE`)."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file="offline.html.j2",
        extra_loaders=[jinja2.DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
    )
    body, _ = exporter.from_filename(str(path))
    return body
