// Detections linked into face tracks over the sampled positions, as src/dfdc/faces/track.py
// builds them: greedy IoU matching between detection runs, a track ends after `maxGap` missed
// runs, tracks seen in too few runs are dropped, the best `maxTracks` by size x confidence kept,
// boxes interpolated between hits and carried `carry` positions past the ends.

import { iou } from './geometry.js';

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

function score(track) {
  const hits = [...track.hits.values()];
  const areas = hits.map((d) => (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]));
  return mean(areas) * mean(hits.map((d) => d.prob));
}

const lastOf = (t) => Math.max(...t.hits.keys());

/** `detections`: Map position -> [{box, prob, landmarks}]; returns tracks with
 * `boxes`: Map position -> {box, landmarks, prob (NaN when carried), detected}. */
export function buildTracks(detections, nPositions, { iouThreshold = 0.3, maxGap = 2,
  minFraction = 0.3, maxTracks = 2, carry = 0 } = {}) {
  const runs = [...detections.keys()].sort((a, b) => a - b);
  const tracks = [];
  let active = [];
  runs.forEach((pos, step) => {
    const found = detections.get(pos);
    const pairs = [];
    active.forEach((t, ti) => found.forEach((d, di) => {
      pairs.push([iou(t.hits.get(lastOf(t)).box, d.box), ti, di]);
    }));
    // Python's sorted(reverse=True) of (overlap, ti, di) tuples.
    pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
    const usedT = new Set(), usedD = new Set();
    for (const [overlap, ti, di] of pairs) {
      if (overlap < iouThreshold || usedT.has(ti) || usedD.has(di)) continue;
      active[ti].hits.set(pos, found[di]);
      usedT.add(ti);
      usedD.add(di);
    }
    found.forEach((d, di) => {
      if (!usedD.has(di)) {
        const t = { hits: new Map([[pos, d]]), boxes: new Map() };
        tracks.push(t);
        active.push(t);
      }
    });
    active = active.filter((t) => runs.indexOf(lastOf(t)) >= step - maxGap);
  });
  const need = Math.max(1, Math.ceil(minFraction * runs.length));
  const kept = tracks.filter((t) => t.hits.size >= need);
  const scored = kept.map((t) => [score(t), t]);
  scored.sort((a, b) => b[0] - a[0]);
  const best = scored.slice(0, maxTracks).map(([, t]) => t);
  for (const t of best) fill(t, nPositions, carry, maxGap, runs);
  return best;
}

const mix = (a, b, w) => a.map((v, i) => Math.fround((1 - w) * v + w * b[i]));
const mixPoints = (a, b, w) => a.map((p, i) => mix(p, b[i], w));

function fill(track, nPositions, carry, maxGap, runs) {
  const hits = [...track.hits.keys()].sort((a, b) => a - b);
  for (const pos of hits) {
    const d = track.hits.get(pos);
    track.boxes.set(pos, { box: d.box, landmarks: d.landmarks, prob: d.prob, detected: true });
  }
  for (let k = 0; k + 1 < hits.length; k++) {
    const a = hits[k], b = hits[k + 1];
    const missed = runs.filter((r) => a < r && r < b).length;
    if (missed > maxGap) continue;
    const da = track.hits.get(a), db = track.hits.get(b);
    for (let pos = a + 1; pos < b; pos++) {
      const w = (pos - a) / (b - a);
      track.boxes.set(pos, { box: mix(da.box, db.box, w),
        landmarks: mixPoints(da.landmarks, db.landmarks, w), prob: NaN, detected: false });
    }
  }
  const first = hits[0], last = hits[hits.length - 1];
  for (let pos = Math.max(0, first - carry); pos < first; pos++) {
    const d = track.hits.get(first);
    track.boxes.set(pos, { box: d.box, landmarks: d.landmarks, prob: NaN, detected: false });
  }
  for (let pos = last + 1; pos < Math.min(nPositions, last + carry + 1); pos++) {
    const d = track.hits.get(last);
    track.boxes.set(pos, { box: d.box, landmarks: d.landmarks, prob: NaN, detected: false });
  }
}
