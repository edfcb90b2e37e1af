// One video's sampled frames -> tracked face crops, as src/dfdc/faces/pipeline.py
// extract_video makes them with the face settings saved in the export: MTCNN on the shrunken
// detection frames, tracks, O-Net refining the boxes in between, the crop square with the
// saved margin, crops of the saved size cut from the decoded YUV planes (or RGB).

import { cropFrame, cropSquare, detectPositions, iou, rerec, smallRgb } from './geometry.js';
import { detect, onet } from './mtcnn.js';
import { buildTracks } from './track.js';

/** Lift a dark frame so MTCNN sees the face (gamma on the detection copy only). */
export function brighten(rgb, darkLevel) {
  let sum = 0;
  for (let i = 0; i < rgb.length; i++) sum += rgb[i];
  const m = sum / rgb.length;
  if (m >= darkLevel || m <= 0) return rgb;
  const gamma = Math.log(darkLevel / 255) / Math.log(Math.max(m, 1) / 255);
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = Math.trunc(Math.min(255, Math.max(0, 255 * (i / 255) ** gamma)));
  return rgb.map((v) => lut[v]);
}

/** The detections of one detection frame, in full-frame pixels (Detector.detect). */
async function detectFrame(run, frame, cfg) {
  const small = smallRgb(frame, cfg.detect_max_side);
  frame.small = small;
  const img = brighten(small.rgb, cfg.dark_level);
  const { boxes, landmarks } = await detect(run, img, small.width, small.height,
    cfg.min_face_size, cfg.thresholds);
  const s = frame.width / small.width;
  const out = [];
  boxes.forEach((b, k) => {
    if (!(b[4] >= cfg.min_prob)) return;
    const box = b.slice(0, 4).map((v) => Math.fround(v * s));
    box[0] = Math.min(Math.max(box[0], 0), frame.width);
    box[2] = Math.min(Math.max(box[2], 0), frame.width);
    box[1] = Math.min(Math.max(box[1], 0), frame.height);
    box[3] = Math.min(Math.max(box[3], 0), frame.height);
    out.push({ box, prob: b[4], landmarks: landmarks[k].map(([x, y]) => [x * s, y * s]) });
  });
  return out;
}

/** O-Net on 48x48 crops of square boxes near a face: [probs, boxes, landmarks]
 * (Detector.refine). */
async function refine(run, crops, squares) {
  const n = squares.length;
  const data = new Float32Array(n * 3 * 48 * 48);
  crops.forEach((rgb, k) => {
    for (let i = 0; i < 48 * 48; i++) {
      for (let c = 0; c < 3; c++) data[k * 3 * 2304 + c * 2304 + i] = (rgb[3 * i + c] - 127.5) * 0.0078125;
    }
  });
  const [reg, points, prob] = await onet(run, data, n);
  const boxes = squares.map((sq, k) => {
    const w = sq[2] - sq[0], h = sq[3] - sq[1];
    return [sq[0] + reg[k][0] * w, sq[1] + reg[k][1] * h, sq[2] + reg[k][2] * w, sq[3] + reg[k][3] * h]
      .map(Math.fround);
  });
  const lms = squares.map((sq, k) => {
    const w = sq[2] - sq[0], h = sq[3] - sq[1];
    return [0, 1, 2, 3, 4].map((j) => [w * points[k][j] + sq[0], h * points[k][5 + j] + sq[1]]);
  });
  return [prob.map((p) => p[1]), boxes, lms];
}

async function refineBetween(run, tracks, frames, cfg) {
  const todo = [];
  for (const t of tracks) for (const [pos, tb] of t.boxes) if (!tb.detected) todo.push([t, pos]);
  if (!todo.length || cfg.refine_steps <= 0) return;
  let boxes = todo.map(([t, pos]) => t.boxes.get(pos).box);
  let probs = [], lms = [];
  for (let step = 0; step < cfg.refine_steps; step++) {
    const squares = todo.map(([, pos], k) => cropSquare(rerec(boxes[k]), 0, frames[pos].width, frames[pos].height));
    const crops = todo.map(([, pos], k) => cropFrame(frames[pos], squares[k], 48));
    [probs, boxes, lms] = await refine(run, crops, squares);
  }
  todo.forEach(([t, pos], k) => {
    if (probs[k] >= cfg.min_prob && iou(boxes[k], t.boxes.get(pos).box) > 0.1) {
      t.boxes.set(pos, { box: boxes[k], landmarks: lms[k], prob: probs[k], detected: true });
    }
  });
}

/** Sampled frames ([{index, width, height, y, u, v}], in index order) -> {status, rows:
 * [{frame, track, box, cropBox, prob, detected, crop (RGB, crop_size square)}]} sorted by
 * track then frame, as the faces stage stores them. */
export async function extractFaces(run, frames, cfg) {
  const detPos = detectPositions(frames.length, cfg.detect_every);
  const detections = new Map();
  for (const p of detPos) detections.set(p, await detectFrame(run, frames[p], cfg));
  const tracks = buildTracks(detections, frames.length, {
    iouThreshold: cfg.track_iou, maxGap: cfg.max_gap, minFraction: cfg.min_track_fraction,
    maxTracks: cfg.max_tracks, carry: Math.max(0, cfg.detect_every - 1),
  });
  await refineBetween(run, tracks, frames, cfg);
  const rows = [];
  tracks.forEach((t, tid) => {
    for (const [pos, tb] of [...t.boxes].sort((a, b) => a[0] - b[0])) {
      rows.push({ pos, frame: frames[pos].index, track: tid, box: tb.box, prob: tb.prob, detected: tb.detected });
    }
  });
  if (!rows.length) return { status: 'no_face', rows, detections };
  rows.sort((a, b) => a.track - b.track || a.frame - b.frame);
  for (const r of rows) {
    const f = frames[r.pos];
    r.cropBox = cropSquare(r.box, cfg.margin, f.width, f.height);
    r.crop = cropFrame(f, r.cropBox, cfg.crop_size);
  }
  return { status: 'ok', rows, detections };
}
