"""BlazeFace, the second detector: anchors and decoding by hand, weighted suppression, boxes on
real faces, ``both`` keeping only agreed faces, sliding windows for small faces, and the faces
stage's outputs with every detector."""

import dataclasses
import glob

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdc.core.video import read_frames
from dfdc.faces import plots
from dfdc.faces.blazeface import BlazeFace, decode, five_points, ssd_anchors, weighted_nms
from dfdc.faces.boxes import iou
from dfdc.faces.detect import Detector
from tests.conftest import SHARED, faces_cfg


def _photo() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_anchors_of_both_models():
    short = ssd_anchors(128, (8, 16, 16, 16), 2)
    assert short.shape == (896, 2)  # 16x16 cells x 2 + 8x8 cells x 6
    assert np.allclose(short[0], [1 / 32, 1 / 32]) and np.allclose(short[1], short[0])
    assert np.allclose(short[512], [1 / 16, 1 / 16]) and np.allclose(short[517], short[512])
    assert np.allclose(short[518], [3 / 16, 1 / 16])
    full = ssd_anchors(192, (4,), 1)
    assert full.shape == (2304, 2) and np.allclose(full[48], [1 / 96, 3 / 96])


def test_decoding_a_hand_worked_anchor():
    anchors = np.array([[0.5, 0.5], [0.25, 0.25]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    # Centre 12.8 px right and 6.4 px up of the anchor, 25.6 x 12.8 px, on a 128 px input.
    raw[0, :4] = [12.8, -6.4, 25.6, 12.8]
    raw[0, 4:6] = [-12.8, 0.0]  # first keypoint 0.1 left of the anchor
    boxes, kps, scores = decode(raw, np.array([0.0, -100.0]), anchors, 128, min_score=0.5)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.5)
    assert np.allclose(boxes[0], [0.5, 0.4, 0.7, 0.5])
    assert np.allclose(kps[0, 0], [0.4, 0.5]) and np.allclose(kps[0, 1], [0.5, 0.5])


def test_weighted_suppression_averages_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    b, _, s = weighted_nms(boxes, kps, np.array([0.9, 0.3, 0.8], np.float32))
    assert len(b) == 2 and s.tolist() == pytest.approx([0.9, 0.8])
    assert np.allclose(b[0], [0.25, 0.25, 10.25, 10.25])  # (0.9 * 0 + 0.3 * 1) / 1.2
    pts = five_points(np.array([[[10, 10], [20, 10], [15, 15], [15, 20], [5, 12], [25, 12]]]))
    assert np.allclose(pts[0, 3], [10.8, 20]) and np.allclose(pts[0, 4], [19.2, 20])


def test_boxes_land_on_the_face_of_a_photo():
    image = _photo()
    boxes, points, scores = BlazeFace().detect(image)
    assert len(boxes) == 1 and scores[0] > 0.6
    x1, _, x2, _ = boxes[0]
    # The eyes inside the box, left of right, above the mouth corners.
    assert (points[0, :, 0] > x1).all() and (points[0, :, 0] < x2).all()
    assert points[0, 0, 0] < points[0, 1, 0] and points[0, 0, 1] < points[0, 3, 1]


def test_square_tiles_find_a_face_the_letterboxed_frame_misses():
    photo = _photo()
    frame = np.full((360, 640, 3), 90, np.uint8)
    scale = 0.16  # the face about 34 px in a 16:9 frame: 10 px once letterboxed to 192
    w, h = int(photo.shape[1] * scale), int(photo.shape[0] * scale)
    frame[150 : 150 + h, 100 : 100 + w] = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    bf = BlazeFace()
    where = bf.detect(photo)[0][0] * scale + np.array([100, 150, 100, 150], np.float32)
    assert len(bf.detect(frame)[0]) == 0
    boxes, points, _ = bf.detect_squares(frame)
    assert len(boxes) == 1 and iou(boxes[0], where) > 0.5
    assert (points[0, :, 0] > boxes[0, 0]).all() and (points[0, :, 0] < boxes[0, 2]).all()
    # A portrait frame is tiled down its height, and the face is found there too.
    tall = np.ascontiguousarray(np.full((640, 360, 3), 90, np.uint8))
    tall[400 : 400 + h, 100 : 100 + w] = frame[150 : 150 + h, 100 : 100 + w]
    tall_boxes, _, _ = bf.detect_squares(tall)
    assert (
        len(tall_boxes) == 1
        and iou(tall_boxes[0], where + np.array([0, 250, 0, 250], np.float32)) > 0.5
    )


def test_sliding_windows_find_a_small_face_the_whole_frame_misses():
    photo = _photo()
    frame = np.full((360, 640, 3), 90, np.uint8)
    scale = 0.1  # the photo's face (about 210 px) becomes about 21 px
    small = cv2.resize(photo, (51, 60), interpolation=cv2.INTER_AREA)
    frame[250:310, 500:551] = small
    bf = BlazeFace()
    where = bf.detect(photo)[0][0] * scale + np.array([500, 250, 500, 250], np.float32)
    assert len(bf.detect_windows(frame, 0)[0]) == 0
    boxes, _, _ = bf.detect_windows(frame, 3)
    assert len(boxes) == 1 and iou(boxes[0], where) > 0.5


def test_both_keeps_only_the_faces_the_two_detectors_agree_on(tmp_path):
    photo = cv2.resize(_photo(), (256, 300))
    frame = np.full((360, 640, 3), 100, np.uint8)
    frame[30:330, 20:276] = photo
    frame[30:330, 360:616] = photo
    det = Detector(faces_cfg(tmp_path, detector="both"), "cpu")
    mtcnn_only = Detector(faces_cfg(tmp_path), "cpu").detect([frame], [(640, 360)])[0]
    assert len(mtcnn_only) == 2
    assert len(det.detect([frame], [(640, 360)])[0]) == 2
    # BlazeFace sees only the right face: the left one is dropped.
    right = next(b for b in mtcnn_only if b.box[0] > 320).box

    def only_right(image, grid):
        return right[None], np.zeros((1, 5, 2), np.float32), np.array([0.9], np.float32)

    det.blaze.detect_windows = only_right
    kept = det.detect([frame], [(640, 360)])[0]
    assert len(kept) == 1 and kept[0].box[0] > 320


@pytest.mark.shared
def test_blazeface_boxes_match_mtcnn_on_real_dfdc_and_ffpp_frames(tmp_path):
    paths = sorted(glob.glob(str(SHARED / "dfdc" / "*" / "*.mp4")))[:4]
    paths += sorted(glob.glob(str(SHARED / "ffpp_c23" / "*.mp4")))[:2]
    mtcnn = Detector(faces_cfg(tmp_path), "cpu")
    bf = BlazeFace()
    ious = []
    for path in paths:
        image = read_frames(path, 3)[1].image
        s = 640 / max(image.shape[:2])
        small = cv2.resize(image, (int(image.shape[1] * s), int(image.shape[0] * s)))
        ref = mtcnn.detect([small], [small.shape[1::-1]])[0]
        boxes, _, _ = bf.detect(small)
        for r in ref:
            ious.append(max((iou(r.box, b) for b in boxes), default=0.0))
    assert len(ious) >= 6 and np.median(ious) > 0.6 and min(ious) > 0.3, ious


@pytest.mark.parametrize("detector", ["blazeface", "both"])
def test_stage_outputs_keep_their_schema_for_every_detector(tiny_stage, tmp_path, detector):
    from dfdc.faces.batch import run_faces

    index = pd.read_parquet(tiny_stage / "videos.parquet").head(3)
    cfg = faces_cfg(tmp_path, detector=detector, windows=2 if detector == "blazeface" else 0)
    table = run_faces(index, cfg)
    reference = pd.read_parquet(tiny_stage / "faces.parquet")
    assert list(table.columns) == list(reference.columns) and len(table)
    status = pd.read_parquet(cfg.status_path)
    assert (status["status"] == "ok").all()
    assert dataclasses.replace(cfg, detector="mtcnn") != cfg
    agreement = plots.detector_agreement(status)
    if detector == "blazeface":
        assert agreement is None
    else:  # the faces notebook's per-video comparison
        assert len(agreement) == int((~status["reused_original"].astype(bool)).sum()) >= 1
        assert (agreement["agreed_faces"] <= agreement["mtcnn_faces"]).all()
        assert (agreement["agreed_faces"] <= agreement["blazeface_faces"]).all()
        assert agreement["agreed_faces"].sum() > 0
        assert plots.plot_detector_agreement(agreement).axes
