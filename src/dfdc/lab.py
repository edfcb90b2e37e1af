"""The "Python (dfdc)" Jupyter kernel: an IPython kernel that starts at the project root.

JupyterLab starts a notebook's kernel in the notebook's folder (``notebooks/``), while every
path of the workspace (``params.yaml`` and each path inside it) is relative to the project
root, where ``dvc repro`` and papermill run. This kernel moves to the root before IPython
starts, so the notebooks run unchanged in Lab, under papermill and from a terminal, and no
notebook carries a ``chdir`` of its own.

``python -m dfdc.lab install`` (run by ``make install``) writes the kernel spec into the
virtual environment; Jupyter starts the kernel as ``python -m dfdc.lab -f CONNECTION_FILE``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["KERNEL_NAME", "install_kernel_spec", "main", "project_root"]

KERNEL_NAME = "dfdc"
DISPLAY_NAME = "Python (dfdc)"
# What marks the project root: the files every stage is run beside.
ROOT_MARKERS = ("params.yaml", "dvc.yaml")


def project_root(start: str | Path) -> Path | None:
    """The nearest folder at or above ``start`` holding ``params.yaml`` and ``dvc.yaml``, or
    None outside a project (a kernel started elsewhere stays where it was started)."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if all((folder / name).is_file() for name in ROOT_MARKERS):
            return folder
    return None


def install_kernel_spec(prefix: str | None = None) -> Path:
    """Write the kernel spec into ``prefix``'s ``share/jupyter/kernels/dfdc`` (the venv's by
    default) and return its folder."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = {
        "argv": [sys.executable, "-m", "dfdc.lab", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
        where = KernelSpecManager().install_kernel_spec(
            tmp, KERNEL_NAME, prefix=prefix or sys.prefix
        )
    return Path(where)


def main(argv: list[str] | None = None) -> None:
    """``install``: write the kernel spec; anything else: start the kernel at the root."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:
        print(f"installed kernel spec {KERNEL_NAME!r} in {install_kernel_spec()}")
        return
    root = project_root(Path.cwd())
    if root is not None:
        os.chdir(root)
        os.environ["PWD"] = str(root)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)


if __name__ == "__main__":
    main()
