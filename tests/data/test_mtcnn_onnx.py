"""MTCNN without torch (dfdc.faces.mtcnn_onnx) against facenet-pytorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfdc.core.config import FacesConfig
from dfdc.faces.detect import Detector
from dfdc.faces.mtcnn_onnx import area_resize
from dfdc.faces.pipeline import extract_video
from dfdc.inference.export import export_mtcnn

BOX_TOLERANCE_PX = 0.01  # stated in docs/inference.md


@pytest.fixture(scope="module")
def mtcnn_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mtcnn")
    export_mtcnn(out)
    return out


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 120, 90)])
@pytest.mark.parametrize("size", [(12, 12), (24, 24), (61, 45)])
def test_area_resize_is_torchs_area_interpolation(shape, size):
    x = torch.rand(*shape) * 255
    ref = F.interpolate(x, size=size, mode="area").numpy()
    assert np.max(np.abs(area_resize(x.numpy(), *size) - ref)) < 1e-3


def test_the_exported_detector_finds_the_same_faces_in_the_sample(mtcnn_dir, tiny_raw):
    cfg = FacesConfig()
    ref, onnx = Detector(cfg, "cpu"), Detector(cfg, "cpu", mtcnn_onnx=str(mtcnn_dir))
    for video in sorted((tiny_raw / "test_videos").glob("*.mp4"))[:2]:
        a, b = extract_video(video, cfg, ref), extract_video(video, cfg, onnx)
        assert a.status["status"] == b.status["status"] == "ok"
        assert np.array_equal(a.frame, b.frame) and np.array_equal(a.track, b.track)
        assert np.max(np.abs(a.box - b.box)) <= BOX_TOLERANCE_PX


@pytest.mark.shared
def test_the_exported_detector_finds_the_same_faces_in_real_clips(mtcnn_dir, shared_dfdc):
    """Whole-frame detection and the O-Net refinement between detections, as the faces stage
    runs them, on real DFDC clips."""
    cfg = FacesConfig()
    ref, onnx = Detector(cfg, "cpu"), Detector(cfg, "cpu", mtcnn_onnx=str(mtcnn_dir))
    for video in sorted(shared_dfdc.rglob("*.mp4"))[:3]:
        a, b = extract_video(video, cfg, ref), extract_video(video, cfg, onnx)
        assert a.status["status"] == b.status["status"]
        assert np.array_equal(a.frame, b.frame) and np.array_equal(a.track, b.track)
        if len(a.box):
            assert np.max(np.abs(a.box - b.box)) <= BOX_TOLERANCE_PX
            assert np.max(np.abs(a.crop_box - b.crop_box)) <= BOX_TOLERANCE_PX
