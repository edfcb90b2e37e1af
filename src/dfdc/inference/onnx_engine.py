"""The ONNX Runtime engine: an exported ensemble (:mod:`dfdc.inference.export`) scoring a
video's crops, without torch.

It is one of the inference path's two engines (``inference.engine: onnx``; the other is
:mod:`dfdc.inference.torch_engine`): :class:`dfdc.inference.predict.Predictor` gives either the
same crops and aggregates what comes back the same way. Crops are prepared as the models' eval
transform does (decoded at the same reduction, resized with ``INTER_AREA``, normalised with the
backbone's mean and std), each distinct input once, and each backbone file runs once over them:
its ``logit`` output scores a frame model, its ``pooled`` output (rounded to float16, as the
training cache is) feeds the sequence heads, one track at a time in frame order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dfdc.core.config import FacesConfig, params_from_dict
from dfdc.core.errors import UserError
from dfdc.core.onnx_sessions import Session, open_session
from dfdc.faces.store import decode_crop, decode_reduction

log = logging.getLogger(__name__)

__all__ = ["FORMAT", "MANIFEST", "ExportError", "OnnxEngine", "OnnxMember", "read_manifest"]

MANIFEST = "export.json"
FORMAT = 1


class ExportError(UserError, RuntimeError):
    """An export that cannot be written or read; the message names the file and the problem."""


def read_manifest(folder: str | Path) -> dict:
    """``export.json`` of an export folder; a missing or unreadable one is a one-line error."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ONNX export here (run: dvc repro export)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable export manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ExportError(f"{path}: export format {found!r}, expected {FORMAT}")
    return manifest


@dataclass
class OnnxMember:
    """One exported model, as the predictor sees a member: its name, kind and face settings."""

    name: str
    kind: str
    reads: str  # "logit": per crop from the backbone; "pooled": through ``head``, per track
    backbone: str  # file name in the export folder
    head: str | None
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_size: int
    faces: FacesConfig
    trained_on: dict = field(default_factory=dict)

    @property
    def input_key(self) -> tuple:
        return (self.input_size, self.mean, self.std)


def prepare_crops(crops: list[bytes], member: OnnxMember) -> np.ndarray:
    """(N, 3, S, S) float32: what the member's eval transform makes of the crops."""
    reduce = decode_reduction(member.crop_size, member.input_size)
    size = member.input_size
    mean = np.asarray(member.mean, np.float32) * 255.0
    inv = 1.0 / (np.asarray(member.std, np.float32) * 255.0)
    out = np.empty((len(crops), 3, size, size), np.float32)
    for i, c in enumerate(crops):
        im = cv2.resize(decode_crop(c, reduce), (size, size), interpolation=cv2.INTER_AREA)
        out[i] = ((im.astype(np.float32) - mean) * inv).transpose(2, 0, 1)
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-z.astype(np.float32)))).astype(np.float32)


class OnnxEngine:
    """The exported members of one folder, each backbone and head an ONNX Runtime session."""

    def __init__(
        self,
        folder: str | Path,
        members: list[str] | None = None,
        device: str = "cpu",
        threads: int = 0,
        batch_size: int = 64,
        runtime: str = "onnxruntime",
    ) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        faces = params_from_dict(
            {"faces": self.manifest["faces"]}, source=str(self.folder / MANIFEST)
        ).faces
        wanted = None if members is None else set(members)
        self.models = [
            OnnxMember(
                m["name"],
                m["kind"],
                m["reads"],
                m["backbone"],
                m.get("head"),
                int(m["input_size"]),
                tuple(m["mean"]),
                tuple(m["std"]),
                int(m["crop_size"]),
                faces,
                m.get("trained_on", {}),
            )
            for m in self.manifest["members"]
            if wanted is None or m["name"] in wanted
        ]
        if wanted is not None and (missing := wanted - {m.name for m in self.models}):
            raise ExportError(
                f"{self.folder / MANIFEST}: no exported {', '.join(sorted(missing))} "
                "(re-run: dvc repro export)"
            )
        if not self.models:
            raise ExportError(f"{self.folder / MANIFEST}: no members to score with")
        self.runtime = runtime
        self.faces, self.batch_size = faces, batch_size
        # The face detector's export beside the models: faces without torch.
        files = self.manifest.get("detector", {}).get("mtcnn", {})
        mtcnn = [self.folder / f for f in files.values()]
        self.mtcnn_dir = str(self.folder) if mtcnn and all(f.is_file() for f in mtcnn) else None
        self.sessions: dict[str, Session] = {}
        for m in self.models:
            for name in (m.backbone, m.head):
                if name and name not in self.sessions:
                    self.sessions[name] = open_session(self.folder / name, runtime, device, threads)
        self.device = next(iter(self.sessions.values())).device

    def _run_backbone(self, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
        sess = self.sessions[name]
        outs = sess.output_names
        parts: dict[str, list] = {o: [] for o in outs}
        for i in range(0, len(x), self.batch_size):
            for o, v in zip(
                outs, sess.run(outs, {"crops": x[i : i + self.batch_size]}), strict=True
            ):
                parts[o].append(v)
        return {o: np.concatenate(v) for o, v in parts.items()}

    def crop_probs(
        self, crops: list[bytes], tracks, frames, share: bool = True
    ) -> dict[str, np.ndarray]:
        """Member name -> one FAKE probability per crop (a sequence member: its track's)."""
        tracks, frames = np.asarray(tracks), np.asarray(frames)
        inputs: dict[tuple, np.ndarray] = {}
        outputs: dict[str, dict[str, np.ndarray]] = {}
        out = {}
        for m in self.models:
            key = (*m.input_key, m.crop_size)
            x = inputs.get(key)
            if x is None:
                x = prepare_crops(crops, m)
                if share:
                    inputs[key] = x
            res = outputs.get(m.backbone)
            if res is None:
                res = self._run_backbone(m.backbone, x) if len(crops) else {}
                if share:
                    outputs[m.backbone] = res
            if not len(crops):
                out[m.name] = np.zeros(0, np.float32)
            elif m.reads == "logit":
                out[m.name] = _sigmoid(res["logit"])
            else:
                out[m.name] = self._track_probs(m, res["pooled"], tracks, frames)
        return out

    def _track_probs(
        self, m: OnnxMember, pooled: np.ndarray, tracks: np.ndarray, frames: np.ndarray
    ) -> np.ndarray:
        emb = pooled.astype(np.float16).astype(np.float32)  # the embedding cache's precision
        probs = np.zeros(len(tracks), np.float64)
        sess = self.sessions[m.head]
        for t in np.unique(tracks):
            idx = np.flatnonzero(tracks == t)
            idx = idx[np.argsort(frames[idx], kind="stable")]
            (logit,) = sess.run(["logit"], {"pooled": emb[idx][None]})
            probs[idx] = float(_sigmoid(logit)[0])
        return probs
