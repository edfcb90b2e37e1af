// The page: a local video in, the exported ensemble's verdict out, computed in this browser.
// Nothing is uploaded: the file is read with the File API, decoded by WebCodecs, and every
// network runs in onnxruntime-web (WebGPU where the browser has it, wasm otherwise).
/* global ort */

import { evenIndices, smallRgb } from './geometry.js';
import { extractFaces } from './faces.js';
import { scoredFrames, scoreVideo } from './score.js';
import { decodeSampled, demux, frameCount, VideoError } from './video.js';

const $ = (id) => document.getElementById(id);
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

let manifest = null;
const sessions = new Map();
let providers = ['wasm'];

function status(text, error = false) {
  const el = $('status');
  el.textContent = text;
  el.className = error ? 'error' : '';
}

function progress(fraction, text) {
  $('progress').value = Math.round(100 * fraction);
  if (text) status(text);
}

async function session(file) {
  if (!sessions.has(file)) {
    sessions.set(file, await ort.InferenceSession.create(`model/${file}`, {
      executionProviders: providers, graphOptimizationLevel: 'all' }));
  }
  return sessions.get(file);
}

/** Runs an exported graph: feeds {name: [Float32Array, dims]} -> {output: {data, dims}}. */
async function runGraph(file, feeds) {
  const s = await session(file);
  const inputs = {};
  for (const [k, [data, dims]] of Object.entries(feeds)) inputs[k] = new ort.Tensor('float32', data.slice(), dims);
  const res = await s.run(inputs);
  const out = {};
  for (const [k, t] of Object.entries(res)) out[k] = { data: t.data, dims: t.dims };
  return out;
}

/** The face detector's networks, outputs in their exported order. */
async function runMtcnn(net, data, dims) {
  const file = manifest.detector.mtcnn[net];
  const s = await session(file);
  const res = await s.run({ x: new ort.Tensor('float32', data.slice(), dims) });
  return s.outputNames.map((k) => ({ data: res[k].data, dims: res[k].dims }));
}

async function init() {
  if (location.protocol === 'file:') {
    status('Opened from file://, where the browser will not load the models or the wasm runtime: serve this folder (dfdc web DIR, or python -m http.server in it) and open http://127.0.0.1:PORT/', true);
    return;
  }
  try {
    ort.env.wasm.wasmPaths = new URL('vendor/', location.href).href;
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    if (navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null))) providers = ['webgpu', 'wasm'];
    manifest = await (await fetch('model/export.json')).json();
    if (!manifest.detector || !manifest.detector.mtcnn) throw new Error('the export has no face detector (re-run: dvc repro export)');
    showTrainedOn(await fetch('build.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({})));
    $('about').textContent = `${manifest.members.length} models (${manifest.ensemble.runs.join(', ')}), `
      + `rule ${manifest.ensemble.rule}, faces ${manifest.ensemble.faces_combine}; ${scoredFrames(manifest)} frames a video; `
      + `runtime ${providers[0]}${self.crossOriginIsolated ? `, ${ort.env.wasm.numThreads} threads` : ', 1 thread'}`;
    $('file').disabled = false;
    status('Choose or drop a video. It stays on this machine.');
    document.body.dataset.ready = '1';
  } catch (e) {
    status(`Could not load the exported models: ${e.message || e}`, true);
  }
}

/** What the models were trained on, at the top beside the verdict (build.json, written by
 * dfdc export --web from the export's records: the line dfdc predict prints), with the same
 * warning when they are sample models. */
function showTrainedOn(build) {
  const el = $('trained');
  const line = build.trained_on || 'trained on: not recorded in this build (rebuild it: dfdc export --web)';
  el.textContent = build.sample_models ? `Sample models. Models ${line}` : `Models ${line}`;
  el.className = build.sample_models ? 'warn' : '';
  el.dataset.sample = build.sample_models ? '1' : '0';
}

/** "no score" for a video that got none (unreadable, no face): its 0.5 is a placeholder, never
 * a verdict (src/dfdc/reports/video_report.py says the same). */
function showNoScore(result) {
  $('verdict').textContent = `no score: ${result.reason || result.status}`;
  $('verdict').dataset.prob = '';
  $('verdict').className = 'none';
}

/** Scores one File; returns (and shows) the result. */
export async function scoreFile(file) {
  const t0 = performance.now();
  const cfg = { ...manifest.faces, frames: scoredFrames(manifest) };
  const result = { video: file.name, status: 'ok', reason: null, prob: 0.5 };
  try {
    progress(0.02, `${file.name}: reading`);
    const demuxed = await demux(await file.arrayBuffer(), file.name);
    const n = frameCount(demuxed);
    const indices = evenIndices(n, cfg.frames);
    const frames = await decodeSampled(demuxed, indices, file.name,
      (i, last) => progress(0.05 + 0.35 * (i / Math.max(1, last)), `${file.name}: decoding frame ${i + 1}`));
    progress(0.45, `${file.name}: finding faces in ${frames.length} frames`);
    const faces = await extractFaces(runMtcnn, frames, cfg);
    result.frames = faces.rows.map((r) => r.frame);
    result.tracks = faces.rows.map((r) => r.track);
    result.boxes = faces.rows.map((r) => Array.from(r.box));
    result.crop_boxes = faces.rows.map((r) => Array.from(r.cropBox || []));
    if (faces.status === 'no_face') {
      Object.assign(result, { status: 'no_face', reason: 'no face track found: scored 0.5' });
    } else {
      progress(0.7, `${file.name}: scoring ${faces.rows.length} face crops with ${manifest.members.length} models`);
      Object.assign(result, await scoreVideo(runGraph, manifest, faces.rows));
    }
    result.width = frames[0].width;
    result.height = frames[0].height;
    result.seconds = (performance.now() - t0) / 1000;
    show(result, frames, faces);
  } catch (e) {
    const unreadable = e instanceof VideoError;
    Object.assign(result, { status: unreadable ? 'unreadable' : 'error', reason: e.message || String(e) });
    status(`${file.name}: ${result.reason}`, true);
    showNoScore(result);
  }
  progress(1);
  const row = document.createElement('tr');
  row.innerHTML = `<td></td><td>${result.prob.toFixed(4)}</td><td>${result.status}</td><td>${(result.seconds || 0).toFixed(1)}</td>`;
  row.firstChild.textContent = result.video;
  $('results').tBodies[0].append(row);
  return result;
}

function show(result, frames, faces) {
  const portrait = result.height > result.width ? ' (portrait)' : '';
  if (result.status !== 'ok') {
    showNoScore(result);
  } else {
    $('verdict').textContent = `${result.prob >= 0.5 ? 'FAKE' : 'REAL'}: P(fake) = ${result.prob.toFixed(4)}`;
    $('verdict').dataset.prob = String(result.prob);
    $('verdict').className = result.prob >= 0.5 ? 'fake' : 'real';
  }
  const members = Object.entries(result.memberScores || {}).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' · ');
  status(`${result.video}: ${result.width}x${result.height}${portrait}, ${frames.length} frames sampled, `
    + `${faces.rows.length} face crops in ${new Set(result.tracks).size} track(s); `
    + `${result.seconds.toFixed(1)} s${result.reason ? `; ${result.reason}` : ''}`);
  $('members').textContent = members;
  drawFrames(result, frames, faces);
  drawTimeline(result);
}

function drawFrames(result, frames, faces) {
  const host = $('frames');
  host.replaceChildren();
  const byPos = new Map();
  faces.rows.forEach((r, i) => (byPos.get(r.pos) || byPos.set(r.pos, []).get(r.pos)).push([r, i]));
  const shown = [...faces.detections.keys()];
  for (const pos of shown) {
    const f = frames[pos];
    const small = f.small || smallRgb(f, 640);
    const c = document.createElement('canvas');
    c.width = small.width;
    c.height = small.height;
    c.title = `frame ${f.index}`;
    const ctx = c.getContext('2d');
    const img = ctx.createImageData(small.width, small.height);
    for (let i = 0; i < small.width * small.height; i++) {
      img.data.set([small.rgb[3 * i], small.rgb[3 * i + 1], small.rgb[3 * i + 2], 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    const s = small.width / f.width;
    // The canvas is shown FRAME_CSS_WIDTH wide: text sized for that, 13 px on screen.
    const px = Math.ceil((13 * small.width) / Math.min(small.width, FRAME_CSS_WIDTH));
    ctx.font = `${px}px sans-serif`;
    for (const [r, i] of byPos.get(pos) || []) {
      const p = result.frameScores ? result.frameScores[i] : 0.5; // Ensemble.frame_scores
      const colour = p >= 0.5 ? '#c62828' : '#2e7d32';
      ctx.strokeStyle = colour;
      ctx.lineWidth = Math.max(2, px / 6);
      ctx.strokeRect(r.box[0] * s, r.box[1] * s, (r.box[2] - r.box[0]) * s, (r.box[3] - r.box[1]) * s);
      label(ctx, `track ${r.track}: ${p.toFixed(2)}`, r.box[0] * s, r.box[1] * s, px, colour);
    }
    label(ctx, `frame ${f.index}`, 0, small.height, px, '#333');
    host.append(c);
  }
}

const FRAME_CSS_WIDTH = 320; // #frames canvas max-width in index.html

/** White text on a `colour` box whose bottom-left corner is (x, y), kept inside the canvas:
 * legible on any frame. */
function label(ctx, text, x, y, px, colour) {
  const w = ctx.measureText(text).width + px / 2, h = px * 1.25;
  x = Math.min(Math.max(0, x), Math.max(0, ctx.canvas.width - w));
  y = Math.min(Math.max(h, y), ctx.canvas.height);
  ctx.fillStyle = colour;
  ctx.fillRect(x, y - h, w, h);
  ctx.fillStyle = '#fff';
  ctx.fillText(text, x + px / 4, y - px * 0.3);
}

function drawTimeline(result) {
  const c = $('timeline');
  const ctx = c.getContext('2d');
  const W = c.width, H = c.height, L = 40, B = 24;
  ctx.clearRect(0, 0, W, H);
  if (!result.frameProbs || !result.frames.length) return;
  const maxF = Math.max(...result.frames, 1);
  const x = (f) => L + ((W - L - 10) * f) / maxF;
  const y = (p) => 8 + (H - B - 8) * (1 - p);
  ctx.strokeStyle = '#999';
  ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(L, y(0.5)); ctx.lineTo(W - 10, y(0.5)); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = '#333';
  ctx.font = '12px sans-serif';
  ctx.fillText('1', 25, y(1) + 4); ctx.fillText('0.5', 16, y(0.5) + 4); ctx.fillText('0', 25, y(0) + 4);
  ctx.fillText('frame', W - 50, H - 6);
  const names = Object.keys(result.frameProbs);
  const tracks = [...new Set(result.tracks)];
  const line = (pts, colour, width, dash = []) => {
    ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.setLineDash(dash);
    ctx.beginPath();
    pts.forEach(([f, p], k) => (k ? ctx.lineTo(x(f), y(p)) : ctx.moveTo(x(f), y(p))));
    ctx.stroke(); ctx.setLineDash([]);
  };
  const legend = [];
  tracks.forEach((t, ti) => {
    const idx = result.tracks.map((tt, i) => [tt, i]).filter(([tt]) => tt === t).map(([, i]) => i)
      .sort((a, b) => result.frames[a] - result.frames[b]);
    names.forEach((n, k) => line(idx.map((i) => [result.frames[i], result.frameProbs[n][i]]),
      COLOURS[k % COLOURS.length], 1, ti ? [3, 3] : []));
    // The ensemble's frame score (Ensemble.frame_scores): the number on the boxes above.
    line(idx.map((i) => [result.frames[i], result.frameScores[i]]), '#000', 2.5, ti ? [6, 3] : []);
  });
  names.forEach((n, k) => legend.push([n, COLOURS[k % COLOURS.length]]));
  legend.push(['ensemble', '#000']);
  legend.forEach(([n, colour], k) => {
    ctx.fillStyle = colour;
    ctx.fillText(n, L + 8 + (k % 4) * 170, H - 6 - 14 * Math.floor(k / 4));
  });
}

function wire() {
  const input = $('file');
  input.addEventListener('change', async () => {
    const results = [];
    for (const f of input.files) results.push(await scoreFile(f));
    window.dfdcResults = results;
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (!manifest) return;
    const results = [];
    for (const f of e.dataTransfer.files) results.push(await scoreFile(f));
    window.dfdcResults = results;
  });
}

wire();
init();
