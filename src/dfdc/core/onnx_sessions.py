"""One ONNX file as a session of one of two runtimes, behind one small interface: ONNX Runtime
(CPU, or CUDA where its GPU build is installed) or OpenVINO (CPU). The ONNX engine and the
torch-free MTCNN open every graph through :func:`open_session`, so the runtime is one setting
(``inference.runtime``), measured against each other in ``benchmarks/predict.py``.

OpenVINO's CPU plugin is told to compute in float32: by default it runs bfloat16 where the CPU
has it, which moved sample-model probabilities by up to 0.047 here (docs/inference.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dfdc.core.errors import UserError

__all__ = ["RUNTIMES", "Session", "SessionError", "open_session"]

RUNTIMES = ("onnxruntime", "openvino")


class SessionError(UserError, RuntimeError):
    """A graph that cannot be opened; the message names the file."""


class Session:
    """``output_names`` and ``run(output_names, {input name: array}) -> [arrays]``."""

    output_names: list[str]
    device: str

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class _OrtSession(Session):
    def __init__(self, path: Path, device: str, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        cuda = device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else None
        self.device = "cuda" if cuda else "cpu"
        self.sess = ort.InferenceSession(str(path), opts, providers=providers)
        self.output_names = [o.name for o in self.sess.get_outputs()]

    def run(self, outputs, feeds):
        return self.sess.run(outputs, feeds)


class _OpenVinoSession(Session):
    _core = None

    def __init__(self, path: Path, device: str, threads: int) -> None:
        import openvino as ov

        if _OpenVinoSession._core is None:
            _OpenVinoSession._core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        self.model = _OpenVinoSession._core.compile_model(str(path), "CPU", config)
        self.device = "cpu"
        self.output_names = [o.get_any_name() for o in self.model.outputs]
        self.request = self.model.create_infer_request()

    def run(self, outputs, feeds):
        res = self.request.infer(feeds)
        return [np.array(res[self.model.output(n)]) for n in outputs]


def open_session(
    path: str | Path, runtime: str = "onnxruntime", device: str = "cpu", threads: int = 0
) -> Session:
    """``path`` opened by ``runtime``; a missing or broken file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SessionError(f"{path}: exported model file missing (re-run: dvc repro export)")
    kinds = {"onnxruntime": _OrtSession, "openvino": _OpenVinoSession}
    if runtime not in kinds:
        raise SessionError(f"inference.runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    try:
        return kinds[runtime](path, device, threads)
    except ImportError:
        raise SessionError(f"inference.runtime {runtime}: the package is not installed") from None
    except Exception as exc:  # a truncated or foreign file: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SessionError(f"{path}: not a loadable ONNX model ({first[:200]})") from None
