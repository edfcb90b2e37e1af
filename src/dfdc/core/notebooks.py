"""Run a jupytext ``.py`` notebook with papermill and keep the executed ``.ipynb`` and HTML.

Stages call this instead of ``papermill`` on the command line so that a failing cell becomes one
line naming the notebook, the cell and the error, and so tests can run every notebook. The
kernel's stdout and stderr (progress bars, epoch lines) stream to this process's terminal while
it runs, so ``dvc repro`` shows a long training stage as it goes; the executed notebook keeps
them too.

The kernel runs in a session of its own (jupyter_client starts it so), out of reach of a signal
to ``dvc repro``'s process group. So it is started to die with this process
(:func:`~dfdc.core.lifetime.death_signal_preexec`); a reaper kills its whole group (its pool
workers, a local Ray instance) once this process is gone
(:func:`~dfdc.core.lifetime.start_group_reaper`); and it is killed at once rather than asked to
shut down when this run is being stopped (Ctrl-C, SIGTERM), since a polite request waits for
the running cell.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from dfdc.core.errors import UserError
from dfdc.core.io import write_text
from dfdc.core.lifetime import death_signal_preexec, start_group_reaper, stopping
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


class _LineTracking:
    """The kernel's stderr as streamed here, remembering whether the last write ended a line:
    a run stopped mid-progress-bar ends the bar's line before its own one-line message."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.at_line_start = stream, True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@functools.cache
def _kernel_manager_class() -> type:
    """jupyter_client's kernel manager, whose kernel dies with this process and is killed at
    once when this process is being stopped (built on first use: a cold ``dfdc`` command
    imports no Jupyter)."""
    from jupyter_client import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            preexec = death_signal_preexec()
            if preexec is not None:
                kw["preexec_fn"] = preexec
            await super()._async_launch_kernel(kernel_cmd, **kw)
            # The kernel's group holds its pool workers and any local Ray instance too.
            pgid = getattr(self.provisioner, "pgid", None)
            if pgid and hasattr(os, "killpg"):
                start_group_reaper(pgid)

        async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            await super().shutdown_kernel(now=now or stopping() is not None, restart=restart)

    return RunKernelManager


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
        stderr = _LineTracking(sys.stderr)
        try:
            pm.execute_notebook(
                str(src_nb),
                str(out_nb),
                parameters=parameters or {},
                kernel_name="python3",
                kernel_manager_class=_kernel_manager_class(),
                cwd=str(cwd) if cwd else None,
                progress_bar=False,
                log_output=False,
                stdout_file=sys.stdout if stream else None,
                stderr_file=stderr if stream else None,
            )
        except pm.PapermillExecutionError as exc:
            # Keep the failed notebook: it shows where it broke.
            out_nb.replace(dst)
            first_line = str(exc.evalue).splitlines()[0] if exc.evalue else ""
            raise NotebookError(
                f"{src}: cell {exc.exec_count} raised {exc.ename}: {first_line}"
                f" (executed notebook: {dst})"
            ) from None
        except KeyboardInterrupt:  # stopped (Ctrl-C, SIGTERM): the caller says so in one line
            if not stderr.at_line_start:
                sys.stderr.write("\n")
            raise
        finally:
            if previous is None:
                os.environ.pop(PROGRESS_ENV, None)
            else:
                os.environ[PROGRESS_ENV] = previous
        out_nb.replace(dst)
    if html:
        write_text(
            notebook_html(dst), dst.with_suffix(".html")
        )  # a run killed here leaves the old page whole
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
