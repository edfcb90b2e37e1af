// Frame sampling, boxes and resampling as the faces stage computes them
// (src/dfdc/core/video.py even_indices, src/dfdc/faces/pipeline.py, frames.py crop_square and
// SampledFrame.crop, boxes.py iou). Pure functions over typed arrays: node runs them in the
// tests against the Python code, the page runs them on decoded frames.

const f32 = Math.fround;

/** numpy's round: halves to the even neighbour. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `n` frame indices spread evenly over `frameCount` frames, first and last included. */
export function evenIndices(frameCount, n) {
  if (frameCount <= 0 || n <= 0) return [];
  if (n >= frameCount) return Array.from({ length: frameCount }, (_, i) => i);
  const step = (frameCount - 1) / (n - 1);
  const out = new Set();
  for (let i = 0; i < n; i++) out.add(roundHalfEven(i === n - 1 ? frameCount - 1 : i * step));
  return [...out].sort((a, b) => a - b);
}

/** The sampled positions the detector runs on: every `every`-th and the last. */
export function detectPositions(n, every) {
  const pos = [];
  for (let i = 0; i < n; i += Math.max(1, every)) pos.push(i);
  if (n && pos[pos.length - 1] !== n - 1) pos.push(n - 1);
  return pos;
}

const clip = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** The square around `box` grown by `margin` on each side, moved (not cut) to fit the frame;
 * in float32 steps as the Python code computes it on float32 boxes. */
export function cropSquare(box, margin, width, height) {
  const [x1, y1, x2, y2] = box.map(f32);
  let side = f32(Math.max(f32(x2 - x1), f32(y2 - y1)) * f32(1 + 2 * margin));
  side = Math.min(side, width, height);
  const cx = f32(f32(x1 + x2) / 2);
  const cy = f32(f32(y1 + y2) / 2);
  const left = clip(f32(cx - f32(side / 2)), 0, f32(width - side));
  const top = clip(f32(cy - f32(side / 2)), 0, f32(height - side));
  return [f32(left), f32(top), f32(left + side), f32(top + side)];
}

/** The square with the same centre and the longer side (MTCNN's own squaring). */
export function rerec(box) {
  const side = f32(Math.max(f32(box[2] - box[0]), f32(box[3] - box[1])));
  const cx = f32(f32(box[0] + box[2]) / 2);
  const cy = f32(f32(box[1] + box[3]) / 2);
  return [f32(cx - side / 2), f32(cy - side / 2), f32(cx + side / 2), f32(cy + side / 2)];
}

export function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** OpenCV's INTER_AREA weights for one axis shrinking `nIn` cells to `nOut`: per output cell,
 * [input index, weight] pairs covering its share of the input. */
function areaWeights(nIn, nOut) {
  const scale = nIn / nOut;
  const out = [];
  for (let d = 0; d < nOut; d++) {
    const a = d * scale;
    const b = a + scale;
    const w = [];
    for (let s = Math.floor(a); s < Math.min(nIn, Math.ceil(b)); s++) {
      const cover = Math.min(b, s + 1) - Math.max(a, s);
      if (cover > 1e-9) w.push([s, cover / scale]);
    }
    out.push(w);
  }
  return out;
}

/** Bilinear weights with pixel centres aligned (OpenCV's INTER_LINEAR, borders replicated). */
function linearWeights(nIn, nOut) {
  const scale = nIn / nOut;
  const out = [];
  for (let d = 0; d < nOut; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) { s = 0; f = 0; }
    if (s >= nIn - 1) { s = nIn - 1; f = 0; }
    out.push(f > 0 ? [[s, 1 - f], [s + 1, f]] : [[s, 1]]);
  }
  return out;
}

/** One channel region (x, y, w, h of a `stride`-wide uint8 plane) resized to `ow` x `oh`
 * with `mode` 'area' (a shrink; an enlargement falls back to linear, as OpenCV does) or
 * 'linear'; float result, rounded to uint8 values as cv2.resize returns them. */
export function resizePlane(plane, stride, x, y, w, h, ow, oh, mode) {
  const area = mode === 'area' && (w > ow || h > oh);
  const wx = area ? areaWeights(w, ow) : linearWeights(w, ow);
  const wy = area ? areaWeights(h, oh) : linearWeights(h, oh);
  const rows = new Float32Array(h * ow);
  for (let r = 0; r < h; r++) {
    const base = (y + r) * stride + x;
    for (let c = 0; c < ow; c++) {
      let v = 0;
      for (const [s, k] of wx[c]) v += plane[base + s] * k;
      rows[r * ow + c] = v;
    }
  }
  const out = new Float32Array(ow * oh);
  for (let r = 0; r < oh; r++) {
    for (let c = 0; c < ow; c++) {
      let v = 0;
      for (const [s, k] of wy[r]) v += rows[s * ow + c] * k;
      out[r * ow + c] = clip(Math.round(v), 0, 255);
    }
  }
  return out;
}

/** BT.601 limited range, FFmpeg's default for untagged H.264 (frames.py _yuv_to_rgb):
 * interleaved RGB uint8 from same-sized float Y, U, V. */
export function yuvToRgb(yy, uu, vv, n) {
  const rgb = new Uint8ClampedArray(n * 3);
  for (let i = 0; i < n; i++) {
    const y = 1.164 * (yy[i] - 16);
    const u = uu[i] - 128;
    const v = vv[i] - 128;
    rgb[3 * i] = Math.trunc(clip(y + 1.596 * v, 0, 255));
    rgb[3 * i + 1] = Math.trunc(clip(y - 0.392 * u - 0.813 * v, 0, 255));
    rgb[3 * i + 2] = Math.trunc(clip(y + 2.017 * u, 0, 255));
  }
  return rgb;
}

/** Python's int(round(v)) of a float32 box coordinate. */
const pixel = (v) => roundHalfEven(v);

/** The face crop of a decoded I420 frame ({y, u, v, width, height}, planes tightly packed):
 * the square `box` resized to `size` x `size` RGB, as SampledFrame.crop does (Y by area when
 * it shrinks, else linear; chroma linear from its even-aligned region). */
export function cropYuv(frame, box, size) {
  const [x1, y1, x2, y2] = box.map(pixel);
  const cw = (frame.width + 1) >> 1;
  const cx1 = x1 >> 1, cy1 = y1 >> 1, cx2 = (x2 + 1) >> 1, cy2 = (y2 + 1) >> 1;
  const mode = x2 - x1 > size ? 'area' : 'linear';
  const yy = resizePlane(frame.y, frame.width, x1, y1, x2 - x1, y2 - y1, size, size, mode);
  const uu = resizePlane(frame.u, cw, cx1, cy1, cx2 - cx1, cy2 - cy1, size, size, 'linear');
  const vv = resizePlane(frame.v, cw, cx1, cy1, cx2 - cx1, cy2 - cy1, size, size, 'linear');
  return yuvToRgb(yy, uu, vv, size * size);
}

/** A region of an interleaved RGB image resized by area (cv2.resize INTER_AREA). */
export function resizeRgb(rgb, stride, x, y, w, h, ow, oh) {
  const out = new Uint8ClampedArray(ow * oh * 3);
  const plane = new Uint8Array(w * h);
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < h; r++) {
      for (let k = 0; k < w; k++) plane[r * w + k] = rgb[3 * ((y + r) * stride + x + k) + c];
    }
    const res = resizePlane(plane, w, 0, 0, w, h, ow, oh, 'area');
    for (let i = 0; i < ow * oh; i++) out[3 * i + c] = res[i];
  }
  return out;
}

/** A frame's face crop: from its YUV 4:2:0 planes, or (other formats, converted whole to
 * RGB as the faces stage does) from its RGB by area. */
export function cropFrame(frame, box, size) {
  if (!frame.rgb) return cropYuv(frame, box, size);
  const [x1, y1, x2, y2] = box.map(pixel);
  return resizeRgb(frame.rgb, frame.width, x1, y1, x2 - x1, y2 - y1, size, size);
}

/** The detection copy of a frame: longest side at most `maxSide`, RGB (what FFmpeg's area
 * scaler makes in the faces stage, here each plane area-resized, then converted). */
export function smallRgb(frame, maxSide) {
  const scale = Math.min(1, maxSide / Math.max(frame.width, frame.height));
  const tw = Math.max(1, roundHalfEven(frame.width * scale));
  const th = Math.max(1, roundHalfEven(frame.height * scale));
  if (frame.rgb) {
    return { rgb: resizeRgb(frame.rgb, frame.width, 0, 0, frame.width, frame.height, tw, th),
      width: tw, height: th };
  }
  const cw = (frame.width + 1) >> 1, ch = (frame.height + 1) >> 1;
  const yy = resizePlane(frame.y, frame.width, 0, 0, frame.width, frame.height, tw, th, 'area');
  const uu = resizePlane(frame.u, cw, 0, 0, cw, ch, tw, th, 'area');
  const vv = resizePlane(frame.v, cw, 0, 0, cw, ch, tw, th, 'area');
  return { rgb: yuvToRgb(yy, uu, vv, tw * th), width: tw, height: th };
}

/** An RGB image (interleaved uint8) resized by area to `size` x `size`, as a float CHW
 * tensor normalised by `mean` and `std` (0-1 scale): the members' eval transform. */
export function normalisedChw(rgb, w, h, size, mean, std, out, offset = 0) {
  const n = size * size;
  for (let c = 0; c < 3; c++) {
    const plane = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) plane[i] = rgb[3 * i + c];
    const r = resizePlane(plane, w, 0, 0, w, h, size, size, 'area');
    const m = mean[c] * 255, inv = 1 / (std[c] * 255);
    for (let i = 0; i < n; i++) out[offset + c * n + i] = (r[i] - m) * inv;
  }
  return out;
}
