// The exported ensemble scoring a video's crops, as src/dfdc/inference/onnx_engine.py and
// predict.py do: each distinct input once, each backbone file once over it; a frame member
// reads the backbone's logit per crop, a sequence member its pooled features (rounded to
// float16 as the training cache is) through its head, one track at a time in frame order;
// each member's video score by the ensemble's rule and faces combination
// (src/dfdc/inference/aggregate.py); folds averaged per run, runs weighted, then the
// temperature and the clip (src/dfdc/inference/ensemble.py).

import { normalisedChw } from './geometry.js';

const EPS = 1e-7; // dfdc.core.metrics.EPS: the logit's clip in Ensemble.apply
const sigmoid = (z) => 1 / (1 + Math.exp(-z));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** float32 -> float16 -> float32 (round to nearest even), for the sequence heads' input. */
export function toHalf(x) {
  if (typeof Float16Array !== 'undefined') return Float32Array.from(Float16Array.from(x));
  const out = new Float32Array(x.length);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i];
    const e = (u[0] >>> 23) & 0xff;
    if (e < 103 || e > 142) { out[i] = e > 142 ? x[i] : 0; continue; } // below 2^-24 / overflow
    const drop = e < 113 ? 13 + (113 - e) : 13; // subnormal halves keep fewer bits
    const half = 1 << (drop - 1), mask = (1 << drop) - 1;
    const rest = u[0] & mask;
    let v = u[0] - rest;
    if (rest > half || (rest === half && (v >>> drop) & 1)) v += 1 << drop;
    u[0] = v;
    out[i] = f[0];
  }
  return out;
}

/** One track's score from its frame scores (aggregate_frames). */
export function aggregateFrames(p, rule = 'mean') {
  if (!p.length) return 0.5;
  if (rule === 'mean') return mean(p);
  if (rule === 'weighted') {
    const w = p.map((x) => Math.abs(x - 0.5) + 1e-3);
    return w.reduce((s, wi, i) => s + wi * p[i], 0) / w.reduce((a, b) => a + b, 0);
  }
  if (rule === 'confident') {
    const fakes = p.filter((x) => x > 0.8);
    if (fakes.length > 0.4 * p.length && fakes.length > 11) return mean(fakes);
    const reals = p.filter((x) => x < 0.2);
    if (reals.length > 0.9 * p.length) return mean(reals);
    return mean(p);
  }
  throw new Error(`unknown aggregation rule ${rule}`);
}

/** Each face track aggregated, then the tracks combined (video_score). */
export function videoScore(probs, tracks, rule, facesCombine) {
  if (!probs.length) return 0.5;
  const ids = [...new Set(tracks)].sort((a, b) => a - b);
  const per = ids.map((t) => aggregateFrames(probs.filter((_, i) => tracks[i] === t), rule));
  return facesCombine === 'max' ? Math.max(...per) : mean(per);
}

/** Runs weighted, then the temperature and the clip (Ensemble.apply): `runScores[i]` is run
 * i's score (its folds averaged). */
function applyEnsemble(ensemble, runScores) {
  let p = 0;
  ensemble.runs.forEach((_, i) => { p += runScores[i] * ensemble.weights[i]; });
  if (ensemble.temperature !== 1) {
    const q = Math.min(Math.max(p, EPS), 1 - EPS);
    p = sigmoid(Math.log(q / (1 - q)) / ensemble.temperature);
  }
  if (ensemble.clip > 0) p = Math.min(Math.max(p, ensemble.clip), 1 - ensemble.clip);
  return p;
}

/** Member name -> value, grouped by run in the ensemble's order (its folds). */
function byRun(ensemble, memberValues) {
  const perRun = {};
  for (const [name, v] of Object.entries(memberValues)) {
    const run = name.slice(0, name.lastIndexOf('/'));
    (perRun[run] = perRun[run] || []).push(v);
  }
  return ensemble.runs.map((run) => {
    if (!perRun[run]) throw new Error(`the ensemble needs run ${run}, which is not in the export`);
    return perRun[run];
  });
}

/** Frames a video is sampled on: the fitted ensemble's count (its calibration was fitted for
 * it; dfdc.inference.ensemble.Ensemble.frames), else every frame the faces settings sample. */
export function scoredFrames(manifest) {
  return (manifest.ensemble && manifest.ensemble.frames) || manifest.faces.frames;
}

/** The ensemble's probability from its members' video scores (Ensemble.prob). */
export function ensembleProb(ensemble, memberScores) {
  return applyEnsemble(ensemble, byRun(ensemble, memberScores).map(mean));
}

/** One score a crop from the members' frame scores, as the ensemble treats video scores
 * (Ensemble.frame_scores): the number the page's boxes, the report and --json show. */
export function ensembleFrameScores(ensemble, frameProbs) {
  const runs = byRun(ensemble, frameProbs);
  const n = runs[0][0].length;
  return Array.from({ length: n }, (_, i) =>
    applyEnsemble(ensemble, runs.map((members) => mean(members.map((p) => p[i])))));
}

/** Member name -> one FAKE probability per crop row (a sequence member: its track's).
 * `run(file, feeds)` runs one exported graph: feeds {input name: [Float32Array, dims]}. */
export async function cropProbs(run, manifest, rows, batch = 32) {
  const inputs = new Map();
  const outputs = new Map();
  const out = {};
  for (const m of manifest.members) {
    const key = `${m.input_size}|${m.mean}|${m.std}`;
    const size = m.input_size, per = 3 * size * size;
    if (!inputs.has(key)) {
      const x = new Float32Array(rows.length * per);
      rows.forEach((r, i) => normalisedChw(r.crop, m.crop_size, m.crop_size, size, m.mean, m.std, x, i * per));
      inputs.set(key, x);
    }
    if (!outputs.has(m.backbone)) {
      const x = inputs.get(key);
      const parts = {};
      for (let i = 0; i < rows.length; i += batch) {
        const n = Math.min(batch, rows.length - i);
        const res = await run(m.backbone, { crops: [x.subarray(i * per, (i + n) * per), [n, 3, size, size]] });
        for (const [k, t] of Object.entries(res)) (parts[k] = parts[k] || []).push(t);
      }
      outputs.set(m.backbone, parts);
    }
    const res = outputs.get(m.backbone);
    if (m.reads === 'logit') {
      out[m.name] = res.logit.flatMap((t) => Array.from(t.data, sigmoid));
    } else {
      out[m.name] = await trackProbs(run, m, res.pooled, rows);
    }
  }
  return out;
}

async function trackProbs(run, m, pooledParts, rows) {
  const d = pooledParts[0].dims[1];
  const all = new Float32Array(rows.length * d);
  let o = 0;
  for (const t of pooledParts) { all.set(t.data, o); o += t.data.length; }
  const emb = toHalf(all);
  const probs = new Array(rows.length).fill(0);
  const ids = [...new Set(rows.map((r) => r.track))].sort((a, b) => a - b);
  for (const t of ids) {
    const idx = rows.map((r, i) => [r, i]).filter(([r]) => r.track === t)
      .sort((a, b) => a[0].frame - b[0].frame).map(([, i]) => i);
    const x = new Float32Array(idx.length * d);
    idx.forEach((i, k) => x.set(emb.subarray(i * d, (i + 1) * d), k * d));
    const res = await run(m.head, { pooled: [x, [1, idx.length, d]] });
    const p = sigmoid(res.logit.data[0]);
    for (const i of idx) probs[i] = p;
  }
  return probs;
}

/** Everything the page shows for one video's crop rows: per-member frame probabilities and
 * video scores, the ensemble's probability. */
export async function scoreVideo(run, manifest, rows) {
  const ens = manifest.ensemble;
  const frameProbs = await cropProbs(run, manifest, rows);
  const tracks = rows.map((r) => r.track);
  const memberScores = {};
  for (const [name, p] of Object.entries(frameProbs)) {
    memberScores[name] = videoScore(p, tracks, ens.rule, ens.faces_combine);
  }
  return {
    prob: ensembleProb(ens, memberScores),
    frameProbs,
    frameScores: ensembleFrameScores(ens, frameProbs),
    memberScores,
  };
}
