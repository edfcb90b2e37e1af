"""Whole-frame face detection on shrunken frames: MTCNN (facenet-pytorch; its weights ship in
the wheel), BlazeFace (:mod:`dfdc.faces.blazeface`), or both agreeing; MTCNN's O-Net refines
tracked boxes between detections whichever detects. MTCNN runs through facenet-pytorch, or,
given the folder of its ONNX export, through :mod:`dfdc.faces.mtcnn_onnx` without torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfdc.core.config import FacesConfig, resolve_device
from dfdc.faces.boxes import ious

__all__ = ["Detection", "Detector"]


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # x1, y1, x2, y2 in full-resolution upright pixels
    prob: float
    landmarks: np.ndarray  # (5, 2)


def _brighten(image: np.ndarray, dark_level: float) -> np.ndarray:
    """Lift a dark frame so MTCNN sees the face (gamma on the detection copy only)."""
    mean = float(image.mean())
    if mean >= dark_level or mean <= 0:
        return image
    gamma = np.log(dark_level / 255.0) / np.log(max(mean, 1.0) / 255.0)
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).clip(0, 255).astype(np.uint8)
    return lut[image]


class _FacenetMTCNN:
    """facenet-pytorch's MTCNN behind the interface :class:`~dfdc.faces.mtcnn_onnx.OnnxMTCNN`
    shares: ``detect`` on uint8 images, ``onet`` on normalised numpy crops."""

    def __init__(self, cfg: FacesConfig, device: str) -> None:
        from facenet_pytorch import MTCNN

        self.device = device
        self.net = MTCNN(
            keep_all=True,
            min_face_size=cfg.min_face_size,
            thresholds=list(cfg.thresholds),
            post_process=False,
            select_largest=False,
            device=device,
        )

    @property
    def min_face_size(self) -> int:
        return self.net.min_face_size

    @min_face_size.setter
    def min_face_size(self, value: int) -> None:
        self.net.min_face_size = value

    def detect(self, images: np.ndarray, landmarks: bool = True):
        return self.net.detect(images, landmarks=landmarks)

    def onet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.net.onet(torch.from_numpy(x).to(self.device))
        return tuple(o.cpu().numpy() for o in out)


class Detector:
    def __init__(
        self,
        cfg: FacesConfig,
        device: str = "cpu",
        mtcnn_onnx: str | None = None,
        runtime: str = "onnxruntime",
    ) -> None:
        self.cfg = cfg
        self.device = resolve_device(device) if mtcnn_onnx is None else "cpu"
        if mtcnn_onnx is None:
            self.mtcnn = _FacenetMTCNN(cfg, self.device)
        else:
            from dfdc.faces.mtcnn_onnx import OnnxMTCNN

            self.mtcnn = OnnxMTCNN(
                mtcnn_onnx, cfg.min_face_size, tuple(cfg.thresholds), runtime=runtime
            )
        self.blaze = None
        if cfg.detector in ("blazeface", "both"):
            from dfdc.faces.blazeface import BlazeFace

            self.blaze = BlazeFace("full", cfg.blazeface_min_score)
        # With ``both``: detections each detector made and those kept, over the last detect()
        # call (one video's detection frames in the faces stage, which records them).
        self.agreement = {"mtcnn_faces": 0, "blazeface_faces": 0, "agreed_faces": 0}

    def _blazeface(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        """BlazeFace on each image (with its windows): (boxes, probs, landmarks)."""
        out = []
        for im in images:
            b, lm, p = self.blaze.detect_windows(
                _brighten(im, self.cfg.dark_level), self.cfg.windows
            )
            out.append((b, p, lm))
        return out

    def _agreed(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        """MTCNN's detections that a BlazeFace detection overlaps (IoU >= 0.3): its boxes and
        its 5 landmarks, kept only where the two detectors agree."""

        out = []
        for (b, p, lm), (bb, _, _) in zip(
            self._run(images, self.cfg.min_face_size), self._blazeface(images), strict=True
        ):
            keep = [len(bb) > 0 and ious(box, bb).max() >= 0.3 for box in b]
            keep = np.asarray(keep, bool)
            self.agreement["mtcnn_faces"] += len(b)
            self.agreement["blazeface_faces"] += len(bb)
            self.agreement["agreed_faces"] += int(keep.sum())
            out.append((b[keep], p[keep], lm[keep]))
        return out

    def _run(
        self, images: list[np.ndarray], min_face: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """MTCNN on same-sized RGB images in one batch: (boxes, probs, landmarks) per image,
        in the images' own pixels, filtered by ``min_prob``."""
        if not images:
            return []
        self.mtcnn.min_face_size = min_face
        images = [_brighten(im, self.cfg.dark_level) for im in images]
        if all(im.shape == images[0].shape for im in images):
            groups = [list(range(len(images)))]
        else:
            groups = [[i] for i in range(len(images))]
        out: list = [None] * len(images)
        for group in groups:
            boxes, probs, points = self.mtcnn.detect(
                np.stack([images[i] for i in group]), landmarks=True
            )
            for i, b, p, lm in zip(group, boxes, probs, points, strict=True):
                if b is None:
                    out[i] = (
                        np.zeros((0, 4), np.float32),
                        np.zeros(0, np.float32),
                        np.zeros((0, 5, 2), np.float32),
                    )
                    continue
                b, p, lm = (np.asarray(x, dtype=np.float32) for x in (b, p, lm))
                keep = p >= self.cfg.min_prob
                out[i] = (b[keep], p[keep], lm[keep])
        return out

    def detect(
        self, images: list[np.ndarray], full_sizes: list[tuple[int, int]]
    ) -> list[list[Detection]]:
        """Detect on shrunken whole frames; boxes come back in full-size pixels."""
        self.agreement = dict.fromkeys(self.agreement, 0)
        results = []
        if self.cfg.detector == "blazeface":
            found_all = self._blazeface(images)
        elif self.cfg.detector == "both":
            found_all = self._agreed(images)
        else:
            found_all = self._run(images, self.cfg.min_face_size)
        for (b, p, lm), im, (fw, fh) in zip(found_all, images, full_sizes, strict=True):
            s = fw / im.shape[1]
            found = []
            for k in range(len(b)):
                box = b[k] * s
                box[[0, 2]] = box[[0, 2]].clip(0, fw)
                box[[1, 3]] = box[[1, 3]].clip(0, fh)
                found.append(Detection(box, float(p[k]), lm[k] * s))
            results.append(found)
        return results

    def refine(
        self, crops: np.ndarray, squares: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """MTCNN's last network (O-Net) on 48x48 crops of square boxes near a face.

        This is the tracker between whole-frame detections: given where a face should be, O-Net
        says whether it is there (probability), where exactly (box regression) and its 5
        landmarks, for about a millisecond a crop. Returns (probs, boxes, landmarks) in the
        crops' frame pixels.
        """
        if len(crops) == 0:
            return (
                np.zeros(0, np.float32),
                np.zeros((0, 4), np.float32),
                np.zeros((0, 5, 2), np.float32),
            )
        x = np.ascontiguousarray(crops).transpose(0, 3, 1, 2).astype(np.float32)
        reg, points, prob = self.mtcnn.onet(np.ascontiguousarray((x - 127.5) * 0.0078125))
        sq = squares.astype(np.float32)
        w = (sq[:, 2] - sq[:, 0])[:, None]
        h = (sq[:, 3] - sq[:, 1])[:, None]
        boxes = sq + reg * np.concatenate([w, h, w, h], axis=1)
        lm = np.stack([w * points[:, :5] + sq[:, :1], h * points[:, 5:] + sq[:, 1:2]], axis=2)
        return prob[:, 1].astype(np.float32), boxes.astype(np.float32), lm.astype(np.float32)
