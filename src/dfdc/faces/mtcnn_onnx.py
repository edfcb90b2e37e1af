"""MTCNN without torch: its three networks as ONNX (exported from facenet-pytorch's weights by
``dfdc export``) run by ONNX Runtime, and the cascade around them in numpy.

The cascade is the one the faces stage runs through facenet-pytorch (an image pyramid at
factor 0.709 from ``min_face_size``; P-Net proposals kept by per-scale and per-image NMS; R-Net
and O-Net refining squared boxes cut from the image and resampled by area averaging; a final
"Min"-overlap NMS), so the ONNX engine finds the same faces without importing torch. Area
resampling is done exactly as torch's ``interpolate(mode="area")`` (adaptive average
pooling, as two averaging matrices); the remaining differences are float rounding in the
networks (checked in ``tests/data/test_mtcnn_onnx.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfdc.core.onnx_sessions import open_session

__all__ = ["FILES", "OnnxMTCNN"]

FILES = {"pnet": "mtcnn-pnet.onnx", "rnet": "mtcnn-rnet.onnx", "onet": "mtcnn-onet.onnx"}
FACTOR = 0.709


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): output cell i averages input cells floor(i n_in / n_out) to
    ceil((i + 1) n_in / n_out), torch's adaptive average pooling."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        a = (i * n_in) // n_out
        b = -((-(i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def area_resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """(..., C, H, W) float32 -> (..., C, h, w), as ``interpolate(mode="area")``."""
    rows = _area_matrix(img.shape[-2], h)
    cols = _area_matrix(img.shape[-1], w)
    return (rows @ img @ cols.T).astype(np.float32)


def _nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "iou"
) -> np.ndarray:
    """Greedy NMS, highest score first. ``iou`` as torchvision's (areas without +1); ``min``:
    the overlap over the smaller box, with +1 pixel areas, as the cascade's last step."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    one = 1.0 if method == "min" else 0.0
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        if method == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _batched_nms(boxes, scores, groups, threshold, method="iou") -> np.ndarray:
    """NMS within each group (image), by offsetting each group's boxes apart."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    offsets = groups.astype(boxes.dtype) * (boxes.max() + 1)
    return _nms(boxes + offsets[:, None], scores, threshold, method)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square about its centre (its longer side)."""
    out = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _cut(imgs: np.ndarray, boxes: np.ndarray, inds: np.ndarray, size: int):
    """The boxes' pixels (1-based, clipped to the image) resampled to size x size, and which
    boxes had any."""
    h, w = imgs.shape[2:]
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    ex, ey = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    cuts, ok = [], []
    for k in range(len(b)):
        if ey[k] > y[k] - 1 and ex[k] > x[k] - 1:
            patch = imgs[inds[k], :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]]
            cuts.append(area_resize(patch, size, size))
            ok.append(k)
    if not cuts:
        return np.zeros((0, 3, size, size), np.float32), np.zeros(0, np.int64)
    return (np.stack(cuts) - 127.5) * 0.0078125, np.asarray(ok, np.int64)


class OnnxMTCNN:
    """facenet-pytorch's ``MTCNN(keep_all=True)``: ``detect`` and ``onet`` with the same
    inputs and outputs, in numpy."""

    def __init__(
        self,
        folder: str | Path,
        min_face_size: int = 20,
        thresholds: tuple[float, ...] = (0.6, 0.7, 0.7),
        threads: int = 0,
        runtime: str = "onnxruntime",
    ) -> None:
        self.sessions = {
            net: open_session(Path(folder) / name, runtime, "cpu", threads)
            for net, name in FILES.items()
        }
        self.min_face_size = min_face_size
        self.thresholds = list(thresholds)

    def _net(self, net: str, x: np.ndarray) -> list[np.ndarray]:
        sess = self.sessions[net]
        return sess.run(sess.output_names, {"x": np.ascontiguousarray(x, np.float32)})

    def onet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-Net on normalised (N, 3, 48, 48) crops: (box regression, landmarks, probs)."""
        parts = [self._net("onet", x[i : i + 512]) for i in range(0, len(x), 512)]
        if not parts:
            return np.zeros((0, 4)), np.zeros((0, 10)), np.zeros((0, 2))
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))

    def _rnet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [self._net("rnet", x[i : i + 512]) for i in range(0, len(x), 512)]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(2))

    def detect(self, images: np.ndarray, landmarks: bool = True):
        """(B, H, W, 3) uint8 RGB -> per image: boxes (N, 4) or None, probs, landmarks (N, 5, 2)."""
        imgs = np.ascontiguousarray(images.transpose(0, 3, 1, 2), np.float32)
        n, _, h, w = imgs.shape
        m = 12.0 / self.min_face_size
        minl, scale, scales = min(h, w) * m, m, []
        while minl >= 12:
            scales.append(scale)
            scale *= FACTOR
            minl *= FACTOR
        # P-Net on the pyramid: 12x12 windows at stride 2, NMS per scale and image.
        found = []
        for s in scales:
            x = (area_resize(imgs, int(h * s + 1), int(w * s + 1)) - 127.5) * 0.0078125
            reg, prob = self._net("pnet", x)
            mask = prob[:, 1] >= self.thresholds[0]
            img_i, yy, xx = np.nonzero(mask)
            score = prob[:, 1][mask]
            r = reg.transpose(1, 0, 2, 3)[:, mask].T
            cell = np.stack([xx, yy], 1).astype(np.float32)
            q1 = np.floor((2 * cell + 1) / s)
            q2 = np.floor((2 * cell + 12) / s)
            boxes = np.concatenate([q1, q2, score[:, None], r], 1).astype(np.float32)
            keep = _batched_nms(boxes[:, :4], boxes[:, 4], img_i, 0.5)
            found.append((boxes[keep], img_i[keep]))
        boxes = np.concatenate([f[0] for f in found]) if found else np.zeros((0, 9), np.float32)
        inds = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
        keep = _batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        rw, rh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * rw, boxes[:, 1] + boxes[:, 6] * rh,
                          boxes[:, 2] + boxes[:, 7] * rw, boxes[:, 3] + boxes[:, 8] * rh,
                          boxes[:, 4]], 1)  # fmt: skip
        boxes = _square(boxes)
        # R-Net on 24x24 cuts.
        if len(boxes):
            x, ok = _cut(imgs, boxes, inds, 24)
            boxes, inds = boxes[ok], inds[ok]
            reg, prob = self._rnet(x)
            passed = prob[:, 1] > self.thresholds[1]
            boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], 1)
            inds, reg = inds[passed], reg[passed]
            keep = _batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, reg = boxes[keep], inds[keep], reg[keep]
            boxes = _square(_regress(boxes, reg))
        # O-Net on 48x48 cuts: the final boxes, probabilities and landmarks.
        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            x, ok = _cut(imgs, boxes, inds, 48)
            boxes, inds = boxes[ok], inds[ok]
            reg, lm, prob = self.onet(x)
            passed = prob[:, 1] > self.thresholds[2]
            boxes = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], 1)
            inds, reg, lm = inds[passed], reg[passed], lm[passed]
            bw = boxes[:, 2] - boxes[:, 0] + 1
            bh = boxes[:, 3] - boxes[:, 1] + 1
            px = bw[:, None] * lm[:, :5] + boxes[:, 0:1] - 1
            py = bh[:, None] * lm[:, 5:] + boxes[:, 1:2] - 1
            points = np.stack([px, py], 2).astype(np.float32)
            boxes = _regress(boxes, reg)
            keep = _batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7, "min")
            boxes, inds, points = boxes[keep], inds[keep], points[keep]
        out_b, out_p, out_l = [], [], []
        for i in range(n):
            sel = inds == i
            if not sel.any():
                out_b.append(None)
                out_p.append([None])
                out_l.append(None)
                continue
            out_b.append(boxes[sel, :4])
            out_p.append(boxes[sel, 4])
            out_l.append(points[sel])
        return out_b, out_p, out_l
