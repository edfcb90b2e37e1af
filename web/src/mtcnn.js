// MTCNN's cascade over its three exported networks, as src/dfdc/faces/mtcnn_onnx.py runs it
// (which is facenet-pytorch's): the image pyramid at factor 0.709, P-Net proposals with NMS per
// scale and per image, R-Net and O-Net on squared cuts resampled by area averaging, the last
// "Min" NMS. `run(net, data, dims)` runs one network (the page: onnxruntime-web) and resolves
// to its outputs ({data, dims}) in the exported order.

const f32 = Math.fround;
const FACTOR = 0.709;

/** torch's interpolate(mode="area"): output cell i averages input cells
 * floor(i n / m) .. ceil((i + 1) n / m). */
function areaRanges(nIn, nOut) {
  const out = [];
  for (let i = 0; i < nOut; i++) {
    const a = Math.floor((i * nIn) / nOut);
    const b = Math.ceil(((i + 1) * nIn) / nOut);
    out.push([a, b]);
  }
  return out;
}

/** (3, H, W) float planes region [x0, x0 + w) x [y0, y0 + h) -> (3, oh, ow), area averaged. */
export function areaResizeChw(img, width, height, x0, y0, w, h, oh, ow, out, offset = 0) {
  const rx = areaRanges(w, ow);
  const ry = areaRanges(h, oh);
  const rows = new Float32Array(h * ow);
  for (let c = 0; c < 3; c++) {
    const base = c * width * height;
    for (let r = 0; r < h; r++) {
      const row = base + (y0 + r) * width + x0;
      for (let j = 0; j < ow; j++) {
        const [a, b] = rx[j];
        let s = 0;
        for (let k = a; k < b; k++) s += img[row + k];
        rows[r * ow + j] = s / (b - a);
      }
    }
    for (let i = 0; i < oh; i++) {
      const [a, b] = ry[i];
      for (let j = 0; j < ow; j++) {
        let s = 0;
        for (let k = a; k < b; k++) s += rows[k * ow + j];
        out[offset + c * oh * ow + i * ow + j] = (s / (b - a) - 127.5) * 0.0078125;
      }
    }
  }
  return out;
}

/** Greedy NMS, highest score first (ties in their order). `iou` as torchvision's; `min`: the
 * overlap over the smaller box with +1 pixel areas, as the cascade's last step. */
export function nms(boxes, threshold, method = 'iou') {
  const one = method === 'min' ? 1 : 0;
  const area = boxes.map((b) => (b[2] - b[0] + one) * (b[3] - b[1] + one));
  let order = boxes.map((_, i) => i).sort((i, j) => boxes[j][4] - boxes[i][4]);
  const keep = [];
  while (order.length) {
    const i = order[0];
    keep.push(i);
    order = order.slice(1).filter((j) => {
      const w = Math.max(0, Math.min(boxes[i][2], boxes[j][2]) - Math.max(boxes[i][0], boxes[j][0]) + one);
      const h = Math.max(0, Math.min(boxes[i][3], boxes[j][3]) - Math.max(boxes[i][1], boxes[j][1]) + one);
      const inter = w * h;
      const o = method === 'min' ? inter / Math.min(area[i], area[j]) : inter / (area[i] + area[j] - inter);
      return o <= threshold;
    });
  }
  return keep;
}

function square(b) {
  const h = f32(b[3] - b[1]);
  const w = f32(b[2] - b[0]);
  const side = Math.max(w, h);
  const x1 = f32(f32(b[0] + f32(w * 0.5)) - f32(side * 0.5));
  const y1 = f32(f32(b[1] + f32(h * 0.5)) - f32(side * 0.5));
  return [x1, y1, f32(x1 + side), f32(y1 + side), ...b.slice(4)];
}

function regress(b, reg) {
  const w = f32(f32(b[2] - b[0]) + 1);
  const h = f32(f32(b[3] - b[1]) + 1);
  return [
    f32(b[0] + f32(reg[0] * w)), f32(b[1] + f32(reg[1] * h)),
    f32(b[2] + f32(reg[2] * w)), f32(b[3] + f32(reg[3] * h)), ...b.slice(4),
  ];
}

/** The boxes' pixels (1-based, clipped to the image) resampled to size x size and normalised;
 * with the indices of the boxes that had any. */
function cut(img, width, height, boxes, size) {
  const ok = [];
  const data = new Float32Array(boxes.length * 3 * size * size);
  for (let k = 0; k < boxes.length; k++) {
    const b = boxes[k].slice(0, 4).map(Math.trunc);
    const x = Math.max(b[0], 1), y = Math.max(b[1], 1);
    const ex = Math.min(b[2], width), ey = Math.min(b[3], height);
    if (ey > y - 1 && ex > x - 1) {
      areaResizeChw(img, width, height, x - 1, y - 1, ex - x + 1, ey - y + 1, size, size, data,
        ok.length * 3 * size * size);
      ok.push(k);
    }
  }
  return { data: data.subarray(0, ok.length * 3 * size * size), ok };
}

async function batched(run, net, data, n, size) {
  // Chunks of 512, as the Python cascade runs them.
  const outs = [];
  const per = 3 * size * size;
  for (let i = 0; i < n; i += 512) {
    const m = Math.min(512, n - i);
    outs.push(await run(net, data.subarray(i * per, (i + m) * per), [m, 3, size, size]));
  }
  return outs;
}

function rowsOf(outs, k, width) {
  const rows = [];
  for (const o of outs) {
    const t = o[k].data;
    for (let i = 0; i < t.length / width; i++) rows.push(Array.from(t.subarray(i * width, (i + 1) * width)));
  }
  return rows;
}

/** One RGB image (interleaved uint8, width x height) -> {boxes: [[x1, y1, x2, y2, p]],
 * landmarks: [[[x, y] x5]]} in the image's pixels. */
export async function detect(run, rgb, width, height, minFaceSize, thresholds) {
  const n = width * height;
  const img = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    img[i] = rgb[3 * i];
    img[n + i] = rgb[3 * i + 1];
    img[2 * n + i] = rgb[3 * i + 2];
  }
  const m = 12.0 / minFaceSize;
  let minl = Math.min(height, width) * m;
  let scale = m;
  const scales = [];
  while (minl >= 12) {
    scales.push(scale);
    scale *= FACTOR;
    minl *= FACTOR;
  }
  let all = [];
  for (const s of scales) {
    const oh = Math.trunc(height * s + 1), ow = Math.trunc(width * s + 1);
    const x = areaResizeChw(img, width, height, 0, 0, width, height, oh, ow, new Float32Array(3 * oh * ow));
    const [regT, probT] = await run('pnet', x, [1, 3, oh, ow]);
    const reg = regT.data, prob = probT.data;
    const gh = probT.dims[2], gw = probT.dims[3];
    const cells = gh * gw;
    const sf = f32(s);
    const found = [];
    for (let yy = 0; yy < gh; yy++) {
      for (let xx = 0; xx < gw; xx++) {
        const c = yy * gw + xx;
        const p = prob[cells + c];
        if (p < thresholds[0]) continue;
        found.push([
          Math.floor(f32(f32(2 * xx + 1) / sf)), Math.floor(f32(f32(2 * yy + 1) / sf)),
          Math.floor(f32(f32(2 * xx + 12) / sf)), Math.floor(f32(f32(2 * yy + 12) / sf)),
          p, reg[c], reg[cells + c], reg[2 * cells + c], reg[3 * cells + c],
        ]);
      }
    }
    all.push(...nms(found, 0.5).map((i) => found[i]));
  }
  all = nms(all, 0.7).map((i) => all[i]);
  let boxes = all.map((b) => {
    const rw = f32(b[2] - b[0]), rh = f32(b[3] - b[1]);
    return square([
      f32(b[0] + f32(b[5] * rw)), f32(b[1] + f32(b[6] * rh)),
      f32(b[2] + f32(b[7] * rw)), f32(b[3] + f32(b[8] * rh)), b[4],
    ]);
  });
  // R-Net on 24x24 cuts.
  if (boxes.length) {
    const { data, ok } = cut(img, width, height, boxes, 24);
    boxes = ok.map((k) => boxes[k]);
    const outs = await batched(run, 'rnet', data, ok.length, 24);
    const reg = rowsOf(outs, 0, 4), prob = rowsOf(outs, 1, 2);
    let kept = [], regs = [];
    for (let i = 0; i < boxes.length; i++) {
      if (prob[i][1] > thresholds[1]) {
        kept.push([...boxes[i].slice(0, 4), prob[i][1]]);
        regs.push(reg[i]);
      }
    }
    const keep = nms(kept, 0.7);
    boxes = keep.map((i) => square(regress(kept[i], regs[i])));
  }
  // O-Net on 48x48 cuts: the final boxes, probabilities and landmarks.
  let points = [];
  if (boxes.length) {
    const { data, ok } = cut(img, width, height, boxes, 48);
    boxes = ok.map((k) => boxes[k]);
    const outs = await batched(run, 'onet', data, ok.length, 48);
    const reg = rowsOf(outs, 0, 4), lm = rowsOf(outs, 1, 10), prob = rowsOf(outs, 2, 2);
    const kept = [], pts = [];
    for (let i = 0; i < boxes.length; i++) {
      if (!(prob[i][1] > thresholds[2])) continue;
      const b = [...boxes[i].slice(0, 4), prob[i][1]];
      const bw = f32(f32(b[2] - b[0]) + 1), bh = f32(f32(b[3] - b[1]) + 1);
      pts.push([0, 1, 2, 3, 4].map((j) => [
        f32(f32(bw * lm[i][j]) + b[0]) - 1, f32(f32(bh * lm[i][5 + j]) + b[1]) - 1,
      ]));
      kept.push(regress(b, reg[i]));
    }
    const keep = nms(kept, 0.7, 'min');
    boxes = keep.map((i) => kept[i]);
    points = keep.map((i) => pts[i]);
  }
  return { boxes, landmarks: points };
}

/** O-Net on normalised (N, 3, 48, 48) crops: [reg rows, landmark rows, prob rows]. */
export async function onet(run, data, n) {
  if (!n) return [[], [], []];
  const outs = await batched(run, 'onet', data, n, 48);
  return [rowsOf(outs, 0, 4), rowsOf(outs, 1, 10), rowsOf(outs, 2, 2)];
}
