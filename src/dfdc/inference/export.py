"""The fitted ensemble as ONNX: what the ONNX Runtime engine (:mod:`dfdc.inference.onnx_engine`),
the Kaggle kernel and any consumer outside Python need, and nothing else.

``export_ensemble`` writes into one folder:

- ``backbone-<id>.onnx``, one per distinct backbone: normalised crops ``crops`` (N, 3, S, S)
  in, ``pooled`` features (N, D) and/or one ``logit`` (N,) per crop out. A fold's frame model
  and the sequence model that embeds with the same checkpoint share one file (one pass);
- ``head-<run>-fold<k>.onnx`` for each sequence model: one track's features ``pooled``
  (1, T, D; float16-rounded, as the embedding cache) in, its ``logit`` (1,) out;
- ``export.json``: the members (kind, files, input size, normalisation, which output the score
  comes from, the checkpoint's digest and training data), the ensemble (rule, faces
  combination, weights, temperature, clip), the face settings the crops must be made with,
  and the opset.

Every graph has a dynamic batch (and track length) axis and is checked by ``onnx.checker``.
A model that cannot be exported is a one-line error naming the checkpoint and the layer.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dfdc.core.config import to_dict
from dfdc.core.io import atomic_path, write_json
from dfdc.core.layout import member_run
from dfdc.core.provenance import sha256_file
from dfdc.faces.mtcnn_onnx import FILES as MTCNN_FILES
from dfdc.inference.ensemble import Ensemble
from dfdc.inference.onnx_engine import FORMAT, MANIFEST, ExportError
from dfdc.kinds import LoadedModel

log = logging.getLogger(__name__)

__all__ = [
    "OPSET",
    "ExportResult",
    "export_ensemble",
    "export_fitted",
    "export_module",
    "export_mtcnn",
]

OPSET = 17


@dataclass
class ExportResult:
    out: Path
    manifest: dict
    files: list[Path]


def _innermost_module(module: torch.nn.Module):
    """Forward hooks that remember which submodule was running last (the layer an export
    failure names); returns (the list of names entered and not yet left, remove)."""
    stack: list[str] = []
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def pre(_m, _inp, name=name):
            stack.append(f"{name} ({type(_m).__name__})")

        def post(_m, _inp, _out):
            if stack:
                stack.pop()

        handles.append(sub.register_forward_pre_hook(pre))
        handles.append(sub.register_forward_hook(post))

    def remove() -> None:
        for h in handles:
            h.remove()

    return stack, remove


def export_module(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str,
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]],
    source: str,
    check: torch.Tensor | None = None,
) -> None:
    """One module to one checked ONNX file (written atomically): the ONNX checker, then ONNX
    Runtime on ``check`` (an input of another batch size or length than ``example``) against
    torch, so a graph that traced a data-dependent step into a constant is refused."""
    import onnx

    module = module.eval().cpu()
    stack, remove = _innermost_module(module)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                input_names=[input_name],
                output_names=list(outputs),
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
            model = onnx.load(str(tmp))
            onnx.checker.check_model(model, full_check=True)
            if check is not None:
                _check_runtime(module, tmp, input_name, check)
            tmp.chmod(0o644)  # read by the kernel, a static page, anyone
    except Exception as exc:
        layer = stack[-1] if stack else type(module).__name__
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"{source}: cannot export to ONNX at layer {layer}: {first}") from None
    finally:
        remove()


def _check_runtime(module: torch.nn.Module, path: Path, input_name: str, x: torch.Tensor) -> None:
    import onnxruntime as ort

    with torch.inference_mode():
        ref = module(x)
    ref = [r.numpy() for r in (ref if isinstance(ref, tuple | list) else (ref,))]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {input_name: x.numpy()})
    for r, g in zip(ref, got, strict=True):
        if r.shape != g.shape or not np.allclose(r, g, rtol=1e-3, atol=1e-4):
            diff = float(np.max(np.abs(r - g))) if r.shape == g.shape else float("inf")
            raise RuntimeError(
                f"the graph gives other outputs at input shape {tuple(x.shape)} (max difference "
                f"{diff:.3g}): a data-dependent step was traced as a constant"
            )


def export_mtcnn(out: Path) -> list[Path]:
    """MTCNN's P-, R- and O-Net (facenet-pytorch's weights) as ONNX: P-Net over any image size,
    R-Net and O-Net over batches of 24 and 48 pixel cuts."""
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(device="cpu")
    nets = (
        ("pnet", mtcnn.pnet, torch.zeros(1, 3, 40, 56), ("reg", "prob"), {0: "n", 2: "h", 3: "w"}),
        ("rnet", mtcnn.rnet, torch.zeros(2, 3, 24, 24), ("reg", "prob"), {0: "n"}),
        ("onet", mtcnn.onet, torch.zeros(2, 3, 48, 48), ("reg", "landmarks", "prob"), {0: "n"}),
    )
    paths = []
    for key, net, example, outputs, axes in nets:
        path = out / MTCNN_FILES[key]
        dynamic = {"x": axes, **{o: axes if key == "pnet" else {0: "n"} for o in outputs}}
        check = torch.randn(3, *example.shape[1:2], *(s + 8 for s in example.shape[2:]))
        if key != "pnet":
            check = torch.randn(3, *example.shape[1:])
        export_module(net, example, path, "x", outputs, dynamic, f"facenet-pytorch MTCNN {key}",
                      check)  # fmt: skip
        paths.append(path)
    return paths


def export_ensemble(
    models: list[LoadedModel],
    ensemble: Ensemble | None,
    out: str | Path,
    checkpoints: dict[str, Path],
) -> ExportResult:
    """Write ``models`` (and the ensemble that weighs them) as ONNX into ``out``; see the
    module docstring for what lands there. ``checkpoints``: member name -> its ``best.pt``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    members, files = [], []
    backbones: dict[str, dict] = {}  # backbone id -> {"file", "outputs"}
    # Frame models first: where a frame model and a sequence model share a backbone, the frame
    # model's graph gives both outputs and the sequence model reuses it.
    order = sorted(models, key=lambda m: not m.kind.embeds)
    for model in order:
        ckpt = checkpoints[model.name]
        parts = model.kind.export_parts(model)
        size = model.input_size
        key = model.backbone_id or f"own:{model.name}"
        shared = backbones.get(key)
        if shared is None or parts.reads not in shared["outputs"]:
            tag = hashlib.sha256(f"{key}:{','.join(parts.outputs)}".encode()).hexdigest()[:12]
            fname = f"backbone-{tag}.onnx"
            example = torch.zeros(2, 3, size, size)
            check = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
            export_module(
                parts.backbone, example, out / fname, "crops", parts.outputs,
                {"crops": {0: "n"}, **{o: {0: "n"} for o in parts.outputs}}, str(ckpt), check,
            )  # fmt: skip
            backbones[key] = {"file": fname, "outputs": list(parts.outputs)}
            files.append(out / fname)
        head_file = None
        if parts.head is not None:
            run, fold = model.name.split("/")
            head_file = f"head-{run}-{fold}.onnx"
            with torch.inference_mode():
                dim = int(parts.backbone(torch.zeros(1, 3, size, size)).shape[1])
            check = torch.randn(1, 9, dim, generator=torch.Generator().manual_seed(0))
            export_module(
                parts.head, torch.zeros(1, 5, dim), out / head_file, "pooled", ("logit",),
                {"pooled": {1: "t"}}, str(ckpt), check,
            )  # fmt: skip
            files.append(out / head_file)
        mean, std = model.input_key[1], model.input_key[2]
        members.append(
            {
                "name": model.name,
                "run": member_run(model.name),
                "kind": model.kind.name,
                "backbone": backbones[key]["file"],
                "reads": parts.reads,
                "head": head_file,
                "input_size": size,
                "mean": list(mean),
                "std": list(std),
                "crop_size": model.faces.crop_size,
                "checkpoint": str(ckpt),
                "checkpoint_sha256": sha256_file(ckpt),
                "trained_on": model.trained_on,
            }
        )
    members.sort(key=lambda m: m["name"])
    files += export_mtcnn(out)
    manifest = {
        "format": FORMAT,
        "opset": OPSET,
        "members": members,
        "backbones": {v["file"]: v["outputs"] for v in backbones.values()},
        "ensemble": None if ensemble is None else ensemble.as_dict(),
        "faces": to_dict(models[0].faces),
        # The face detector's networks (dfdc.faces.mtcnn_onnx runs the cascade around them).
        "detector": {"mtcnn": MTCNN_FILES, "weights": "facenet-pytorch (the installed wheel)"},
    }
    write_json(manifest, out / MANIFEST)
    log.info("export: %d members, %d backbones -> %s", len(members), len(backbones), out)
    return ExportResult(out, manifest, files)


def export_fitted(models_dir: str | Path, ensemble: Ensemble, out: str | Path):
    """The checkpoints of ``ensemble``'s runs under ``models_dir``, loaded on the CPU and
    exported into ``out`` (emptied first); returns (the torch engine, the export)."""
    import shutil

    from dfdc.core.layout import find_checkpoints
    from dfdc.inference.torch_engine import TorchEngine

    paths = [p for run in ensemble.runs for p in find_checkpoints(Path(models_dir) / run)]
    engine = TorchEngine.load(paths, "cpu")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    return engine, export_ensemble(engine.models, ensemble, out, engine.checkpoints)
