// A local video file -> its sampled frames as I420 planes (or RGB for other formats), decoded forward in presentation
// order as the faces stage decodes with FFmpeg (src/dfdc/faces/frames.py decode_sampled):
// mp4box.js reads the container (frame count, codec configuration), WebCodecs decodes, and
// the frames at the wanted indices are kept, their Y, U and V planes copied out.
/* global MP4Box, DataStream, VideoDecoder, EncodedVideoChunk */

import { yuvToRgb } from './geometry.js';

export class VideoError extends Error {}

/** Demux an MP4/MOV ArrayBuffer: {track, samples, config}. */
export function demux(buffer, name) {
  return new Promise((resolve, reject) => {
    const file = MP4Box.createFile();
    let info = null;
    const samples = [];
    file.onError = (e) => reject(new VideoError(`${name}: not a readable MP4/MOV file (${e})`));
    file.onReady = (i) => {
      info = i;
      const t = i.videoTracks[0];
      if (!t) return;
      file.setExtractionOptions(t.id, null, { nbSamples: Infinity });
      file.start();
    };
    file.onSamples = (_, __, s) => samples.push(...s);
    buffer.fileStart = 0;
    try {
      file.appendBuffer(buffer);
      file.flush();
    } catch (e) {
      reject(new VideoError(`${name}: not a readable MP4/MOV file (${e.message || e})`));
      return;
    }
    if (!info) return reject(new VideoError(`${name}: not an MP4/MOV file this page can read`));
    const track = info.videoTracks[0];
    if (!track) return reject(new VideoError(`${name}: no video track`));
    const entry = file.getTrackById(track.id).mdia.minf.stbl.stsd.entries[0];
    const box = entry.avcC || entry.hvcC || entry.vpcC || entry.av1C;
    let description;
    if (box) {
      const ds = new DataStream(undefined, 0, DataStream.BIG_ENDIAN);
      box.write(ds);
      description = new Uint8Array(ds.buffer, 8); // without the box header
    }
    const config = { codec: track.codec, codedWidth: track.video.width,
      codedHeight: track.video.height, description };
    resolve({ track, samples, config, rotation: rotationOf(track.matrix) });
  });
}

/** The display rotation a track matrix asks for (0, 90, 180, 270). */
function rotationOf(m) {
  if (!m) return 0;
  const a = m[0] | 0, b = m[1] | 0;
  const deg = Math.round((Math.atan2(b, a) * 180) / Math.PI);
  return ((deg % 360) + 360) % 360;
}

/** The frame count FFmpeg reports for the file (the header's samples). */
export const frameCount = (demuxed) => demuxed.samples.length;

/** Decode forward; keep `indices` (presentation order) as {index, width, height, y, u, v}. */
export async function decodeSampled(demuxed, indices, name, onFrame = () => {}) {
  if (typeof VideoDecoder === 'undefined') {
    throw new VideoError('this browser has no WebCodecs VideoDecoder: use a recent Chromium, Edge or Chrome');
  }
  const { config, samples } = demuxed;
  const support = await VideoDecoder.isConfigSupported(config).catch(() => ({ supported: false }));
  if (!support.supported) throw new VideoError(`${name}: this browser cannot decode ${config.codec}`);
  const wanted = new Set(indices);
  const last = Math.max(...indices);
  const kept = [];
  let n = 0;
  let failure = null;
  const pending = [];
  const decoder = new VideoDecoder({
    output: (frame) => {
      const i = n++;
      if (wanted.has(i)) pending.push(keep(frame, i).then((f) => { kept.push(f); onFrame(i, last); }));
      else frame.close();
    },
    error: (e) => { failure = e; },
  });
  decoder.configure(config);
  for (const s of samples) {
    if (failure) break;
    decoder.decode(new EncodedVideoChunk({ type: s.is_sync ? 'key' : 'delta',
      timestamp: (1e6 * s.cts) / s.timescale, duration: (1e6 * s.duration) / s.timescale, data: s.data }));
    if (decoder.decodeQueueSize > 16) await new Promise((r) => setTimeout(r, 0));
    if (n > last) break;
  }
  try {
    await decoder.flush();
  } catch (e) {
    failure = failure || e;
  }
  await Promise.all(pending);
  decoder.close();
  if (!kept.length) throw new VideoError(`${name}: no decodable frame${failure ? ` (${failure.message || failure})` : ''}`);
  kept.sort((a, b) => a.index - b.index);
  if (demuxed.rotation) return kept.map((f) => rotate(f, demuxed.rotation));
  return kept;
}

async function keep(frame, index) {
  const rect = frame.visibleRect;
  const w = rect.width, h = rect.height;
  const format = frame.format;
  try {
    if (format === 'I420' && !(frame.colorSpace && frame.colorSpace.fullRange)) {
      // 8-bit 4:2:0, nearly every clip: the planes as they are, RGB only inside the crops.
      const cw = (w + 1) >> 1, ch = (h + 1) >> 1;
      const buf = new Uint8Array(w * h + 2 * cw * ch);
      const layout = [{ offset: 0, stride: w }, { offset: w * h, stride: cw },
        { offset: w * h + cw * ch, stride: cw }];
      await frame.copyTo(buf, { rect, layout });
      return { index, width: w, height: h, y: buf.subarray(0, w * h),
        u: buf.subarray(w * h, w * h + cw * ch), v: buf.subarray(w * h + cw * ch) };
    }
    if (format === 'I444') {
      // 4:4:4 (some FF++ clips): converted whole, BT.601 as FFmpeg's rgb24 does.
      const buf = new Uint8Array(3 * w * h);
      const layout = [{ offset: 0, stride: w }, { offset: w * h, stride: w }, { offset: 2 * w * h, stride: w }];
      await frame.copyTo(buf, { rect, layout });
      const n = w * h;
      return { index, width: w, height: h,
        rgb: yuvToRgb(buf.subarray(0, n), buf.subarray(n, 2 * n), buf.subarray(2 * n), n) };
    }
    // Anything else (NV12, 10-bit, alpha): the browser's own conversion to RGB.
    const rgba = new Uint8Array(4 * w * h);
    await frame.copyTo(rgba, { rect, format: 'RGBX' });
    const rgb = new Uint8ClampedArray(3 * w * h);
    for (let i = 0; i < w * h; i++) rgb.set(rgba.subarray(4 * i, 4 * i + 3), 3 * i);
    return { index, width: w, height: h, rgb, converted: format };
  } catch (e) {
    throw new VideoError(`frames in ${format}: the browser cannot copy them out (${e.message || e})`);
  } finally {
    frame.close();
  }
}

function rotatePlane(p, w, h, deg) {
  const out = new Uint8Array(w * h);
  const [ow] = deg === 180 ? [w, h] : [h, w];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let nx, ny;
      // numpy's rot90(k = deg / 90), as the faces stage turns a rotated clip upright.
      if (deg === 90) { nx = y; ny = w - 1 - x; } else if (deg === 270) { nx = h - 1 - y; ny = x; } else { nx = w - 1 - x; ny = h - 1 - y; }
      out[ny * ow + nx] = p[y * w + x];
    }
  }
  return out;
}

/** A frame shown upright (the track matrix's rotation applied to each plane). */
function rotate(f, deg) {
  const swapped = deg === 90 || deg === 270;
  if (f.rgb) {
    const out = new Uint8ClampedArray(f.rgb.length);
    for (let c = 0; c < 3; c++) {
      const p = new Uint8Array(f.width * f.height);
      for (let i = 0; i < p.length; i++) p[i] = f.rgb[3 * i + c];
      const r = rotatePlane(p, f.width, f.height, deg);
      for (let i = 0; i < r.length; i++) out[3 * i + c] = r[i];
    }
    return { index: f.index, width: swapped ? f.height : f.width,
      height: swapped ? f.width : f.height, rgb: out };
  }
  const cw = (f.width + 1) >> 1, ch = (f.height + 1) >> 1;
  const swap = deg === 90 || deg === 270;
  return { index: f.index, width: swap ? f.height : f.width, height: swap ? f.width : f.height,
    y: rotatePlane(f.y, f.width, f.height, deg), u: rotatePlane(f.u, cw, ch, deg),
    v: rotatePlane(f.v, cw, ch, deg) };
}
