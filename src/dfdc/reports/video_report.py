"""Why a video was called fake: one self-contained HTML page a video (``dfdc predict --report``),
with its PNGs and a JSON file holding every number the page shows.

The page has the verdict and how it was reached (the probability, the rule and faces
combination, each member's video score and weight, the calibration), the sampled frames with
each tracked face's box, track id and score, the per-frame timeline of each track (per member
and for the ensemble, the frames that decided marked), heatmaps (Grad-CAM of the frame models
over the crops that scored most and least fake; for the sequence models, how much leaving each
frame out moves its track's probability) and the provenance (checkpoints and their digests,
what they were trained on, the revision). Explanations need gradients, so they come from the
torch engine; with the onnx engine the page says so and shows the rest.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dfdc.core.io import save_figure, write_image, write_json, write_text
from dfdc.core.layout import member_run
from dfdc.core.provenance import git_revision, sha256_file
from dfdc.faces.store import decode_crop
from dfdc.inference.aggregate import video_score
from dfdc.inference.predict import InferenceBundle, VideoPrediction

__all__ = [
    "VideoReport",
    "evaluation_report",
    "mistake_reports",
    "mistakes",
    "pick_labels",
    "plot_gallery",
    "read_report",
    "report_folder",
    "verdict",
    "video_report",
]

PICKS = 3  # crops each side (most and least fake) that get heatmaps
FRAME_GRID = 8  # sampled frames drawn with their boxes
FRAME_COLUMNS = 2
PAGE_WIDTH = 980  # the page's max-width (CSS below): figures drawn at it are shown 1:1
GRID_PAD = 6
REPORT_SIDE = 480  # longest side of a drawn frame
REPORT_IMAGES = ("frames.png", "timeline.png", "heatmaps.png")


@dataclass
class VideoReport:
    page: Path  # the HTML
    data: dict  # what report.json holds
    prediction: VideoPrediction


def member_weights(bundle: InferenceBundle, names: list[str]) -> dict[str, float]:
    """Each member's share of the probability: its run's weight over the run's folds (equal
    shares without an ensemble)."""
    ens = bundle.ensemble
    if ens is None:
        return {n: 1.0 / len(names) for n in names}
    runs = {r: w for r, w in zip(ens.runs, ens.weights, strict=True)}
    folds = {r: sum(member_run(n) == r for n in names) for r in runs}
    return {n: runs.get(member_run(n), 0.0) / max(1, folds.get(member_run(n), 1)) for n in names}


def _grid(images: list[np.ndarray], cols: int, pad: int = 6) -> np.ndarray:
    """RGB images (any sizes) in a white grid, each scaled to the first one's height."""
    h = images[0].shape[0]
    tiles = [cv2.resize(im, (max(1, round(im.shape[1] * h / im.shape[0])), h)) for im in images]
    w = max(t.shape[1] for t in tiles)
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    canvas = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, t in enumerate(row):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            canvas[y : y + h, x : x + t.shape[1]] = t
    return canvas


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple) -> None:
    """``text`` in white on a ``colour`` box whose bottom-left corner is (x, y), kept inside
    the image: legible on any frame at the size the page shows it."""
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (w, h), base = cv2.getTextSize(text, font, scale, thick)
    x = int(min(max(0, x), max(0, img.shape[1] - w - 6)))
    y = int(min(max(h + base + 4, y), img.shape[0]))
    cv2.rectangle(img, (x, y - h - base - 4), (x + w + 6, y), colour, -1)
    cv2.putText(img, text, (x + 3, y - base - 2), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _frames_figure(frames: dict, pred: VideoPrediction, scores: np.ndarray, out: Path) -> int:
    """The detection frames the scoring decoded (``Predictor.last_frames``: every
    ``faces.detect_every``-th sampled frame and the last), up to FRAME_GRID, with every face's
    box, track and ensemble frame score drawn. Two frames a row, each drawn at the size the
    page shows it (PAGE_WIDTH wide in all), so a label is as legible as the page's text: drawn
    on the full frame and shrunk with it, it was a few pixels high."""
    picked = sorted(frames)
    picked = [picked[i] for i in np.linspace(0, len(picked) - 1, min(FRAME_GRID, len(picked)))
              .round().astype(int)] if picked else []  # fmt: skip
    cols = min(FRAME_COLUMNS, len(picked))
    tile_w = (PAGE_WIDTH - GRID_PAD * (cols + 1)) // max(1, cols)
    tiles = []
    for f in picked:
        small, width = frames[f]
        tile_h = max(1, round(small.shape[0] * tile_w / small.shape[1]))
        img = cv2.resize(small, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        s = tile_w / width
        for i in np.flatnonzero(np.asarray(pred.frames) == f):
            x1, y1, x2, y2 = (np.asarray(pred.boxes[i]) * s).round().astype(int)
            colour = (209, 73, 91) if scores[i] >= 0.5 else (46, 125, 82)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            _label(img, f"track {pred.tracks[i]}: {scores[i]:.2f}", x1, y1 - 1, colour)
        _label(img, f"frame {f}", 0, 0, (40, 40, 40))
        tiles.append(img)
    if tiles:
        write_image(_grid(tiles, cols, GRID_PAD), out)
    return len(tiles)


def _timeline_figure(
    pred: VideoPrediction, scores: np.ndarray, decided: list[int], effects: dict, out: Path
) -> None:
    frames, tracks = np.asarray(pred.frames), np.asarray(pred.tracks)
    panels = 2 if effects else 1
    fig, axes = plt.subplots(panels, 1, figsize=(8, 2.6 * panels), squeeze=False)
    ax = axes[0, 0]
    for t in np.unique(tracks):
        idx = np.flatnonzero(tracks == t)
        idx = idx[np.argsort(frames[idx], kind="stable")]
        for name, probs in pred.frame_probs.items():
            ax.plot(frames[idx], np.asarray(probs)[idx], lw=0.8, alpha=0.6,
                    label=f"{name} (track {t})")  # fmt: skip
        ax.plot(frames[idx], scores[idx], lw=2.2, color="black", label=f"ensemble (track {t})")
    ax.scatter(frames[decided], scores[decided], s=60, facecolors="none", edgecolors="#d1495b",
               zorder=5, label="the frames that decided")  # fmt: skip
    ax.axhline(0.5, color="grey", lw=0.5, ls="--")
    ax.set(ylim=(-0.02, 1.02), xlabel="frame", ylabel="P(fake)", title="per-frame scores")
    ax.legend(fontsize=6, ncol=2, loc="best")
    if effects:
        ax = axes[1, 0]
        width = max(1.0, (frames.max() - frames.min()) / max(1, len(frames)) * 0.8)
        for k, (name, eff) in enumerate(effects.items()):
            ax.bar(frames + k * width / len(effects), eff, width=width / len(effects), label=name)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="frame", ylabel="change in track P(fake)",
               title="sequence models: the frame's effect (its track's score minus the score "
                     "without it)")  # fmt: skip
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    try:
        save_figure(fig, out, dpi=80)
    finally:
        plt.close(fig)


def pick_labels(picks: list[int], scores: np.ndarray) -> list[str]:
    """Each picked crop's own label: its rank among all the video's crops by ensemble frame
    score (1: the most fake) and that score, so the most and the least fake read apart."""
    rank = np.empty(len(scores), int)
    rank[np.argsort(-np.asarray(scores), kind="stable")] = np.arange(1, len(scores) + 1)
    return [f"#{rank[i]}/{len(scores)}: {scores[i]:.3f}" for i in picks]


def _heatmap_figure(crops: list[bytes], picks: list[int], scores: np.ndarray, maps: dict,
                    out: Path) -> None:  # fmt: skip
    """Row 1: the picked crops, most fake first, each with its rank and ensemble frame score;
    then one row a frame run: its Grad-CAM (jet) over the crop. At most PAGE_WIDTH wide."""
    size = min(160, (PAGE_WIDTH - GRID_PAD * (len(picks) + 1)) // max(1, len(picks)))
    row0, rows = [], {run: [] for run in maps}
    for j, (i, label) in enumerate(zip(picks, pick_labels(picks, scores), strict=True)):
        img = cv2.resize(decode_crop(crops[i]), (size, size), interpolation=cv2.INTER_AREA)
        tile = img.copy()
        cv2.rectangle(tile, (0, 0), (size, 26), (0, 0, 0), -1)  # legible on any crop
        cv2.putText(tile, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        row0.append(tile)
        for run, cams in maps.items():
            heat = cv2.applyColorMap((cv2.resize(cams[j], (size, size)) * 255).astype(np.uint8),
                                     cv2.COLORMAP_JET)[..., ::-1]  # fmt: skip
            blend = (0.55 * img + 0.45 * heat).astype(np.uint8)
            if j == 0:
                cv2.putText(blend, run, (6, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
            rows[run].append(blend)
    tiles = row0 + [t for run in maps for t in rows[run]]
    write_image(_grid(tiles, len(picks), GRID_PAD), out)


def _revision_text(rev: dict) -> str:
    if not rev or not rev.get("revision"):
        return "not a git checkout"
    return rev["revision"][:12] + (" (with uncommitted changes)" if rev.get("dirty") else "")


def verdict(data: dict) -> str:
    """FAKE or REAL for a scored video; "no score" for one that got none (unreadable, no
    face): its 0.5 is a placeholder, not the models' opinion, so it is never called FAKE."""
    if data["status"] != "ok":
        return "no score"
    return "FAKE" if data["prob"] >= 0.5 else "REAL"


def _number(value: float | None, fmt: str = ".4f") -> str:
    """A number for the page; none (an unscored member) as a dash."""
    return "&ndash;" if value is None or not np.isfinite(value) else format(value, fmt)


def _trained_on_html(data: dict) -> str:
    """What the models were trained on, shown beside the verdict; sample models warned of as
    ``dfdc predict`` warns of them."""
    esc = html.escape
    if data.get("sample_models"):
        return f'<p class="trained warn"><b>Sample models.</b> Models {esc(data["trained_on"])}</p>'
    return f'<p class="trained">Models {esc(data["trained_on"])}</p>'


def _page(data: dict, images: list[tuple[str, str]]) -> str:
    esc = html.escape
    called = verdict(data)
    rows = "".join(
        f"<tr><td>{esc(m['name'])}</td><td>{esc(m['kind'])}</td>"
        f"<td>{_number(m['video_score'])}</td><td>{m['weight']:.3f}</td>"
        f"<td><code>{esc(m.get('sha256', '')[:12])}</code></td></tr>"
        for m in data["members"]
    )
    if called == "no score":
        head = (
            f"<p class=v><b>no score</b> <small>({esc(data['status'])}: "
            f"{esc(data.get('reason') or 'no reason given')})</small></p>"
        )
    else:
        head = (
            f"<p class=v>P(fake) = <b>{data['prob']:.4f}</b>: {called} "
            f"<small>({esc(data['status'])})</small></p>"
        )
    figs = "".join(
        f'<h2>{esc(title)}</h2><img src="{esc(src)}" alt="{esc(title)}">' for title, src in images
    )
    notes = "".join(f"<p class=note>{esc(n)}</p>" for n in data["notes"])
    ens = data["ensemble"] or {}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{esc(data["video"])}: {called}</title>
<style>body{{font-family:sans-serif;max-width:{PAGE_WIDTH}px;margin:2em auto;color:#222}}
img{{max-width:100%}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}
.v{{font-size:1.6em}} .note{{color:#8a5a00}}
.warn{{color:#8a5a00;border-left:4px solid #e0a800;padding-left:8px}}</style></head><body>
<h1>{esc(data["video"])}</h1>
{head}
{_trained_on_html(data)}
{notes}
<h2>How the verdict was reached</h2>
<p>Frames to a face score by the rule <b>{esc(data["rule"])}</b>, faces combined by
<b>{esc(data["faces_combine"])}</b>; each member's video score, weighted, then temperature
{ens.get("temperature", 1.0):.3f} and clip {ens.get("clip", 0.0):g}.</p>
<table><tr><th>member</th><th>kind</th><th>video score</th><th>weight</th><th>checkpoint</th></tr>
{rows}</table>
{figs}
<h2>Provenance</h2>
<p>Models trained on: {esc(data["trained_on"])}<br>
Revision: <code>{esc(_revision_text(data["revision"]))}</code><br>
Every number on this page: <a href="report.json">report.json</a></p>
</body></html>
"""


def video_report(bundle: InferenceBundle, path: str | Path, out_dir: str | Path) -> VideoReport:
    """Score ``path`` and write its report into ``out_dir/<video stem>/`` (index.html,
    report.json, PNGs; :func:`report_folder`). A video with no face or that cannot be read gets
    a page that says so, with the verdict "no score".

    An earlier run's files are removed first, then the images are written, the page last,
    each atomically: a write that fails (disk full) leaves no page, never one that points at
    images that are not there or that another run drew."""
    path = Path(path)
    out = report_folder(out_dir, path)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("index.html", "report.json", *REPORT_IMAGES):
        (out / stale).unlink(missing_ok=True)
    pred = bundle.score(path)
    engine = bundle.predictor.engine
    names = list(pred.frame_probs)
    weights = member_weights(bundle, names)
    checkpoints = getattr(engine, "checkpoints", {})
    members = []
    for m in bundle.predictor.models:
        kind = m.kind if isinstance(m.kind, str) else m.kind.name
        ckpt = checkpoints.get(m.name)
        members.append({
            "name": m.name, "kind": kind, "weight": weights.get(m.name, 0.0),
            "video_score": pred.member_scores.get(m.name),  # None: not scored
            "checkpoint": str(ckpt) if ckpt else "", "sha256": sha256_file(ckpt) if ckpt else "",
        })  # fmt: skip
    data = {
        "video": pred.video, "path": str(path), "prob": pred.prob, "status": pred.status,
        "reason": pred.reason, "rule": bundle.predictor.rule,
        "faces_combine": bundle.predictor.faces_combine,
        "ensemble": None if bundle.ensemble is None else bundle.ensemble.as_dict(),
        "members": members, "trained_on": bundle.trained_on,
        "sample_models": bundle.sample_models, "revision": git_revision(),
        "frames": pred.frames, "tracks": pred.tracks, "boxes": pred.boxes,
        "crop_boxes": pred.crop_boxes, "frame_probs": pred.frame_probs,
        "member_scores": pred.member_scores, "notes": [],
    }  # fmt: skip
    images: list[tuple[str, str]] = []
    if pred.status != "ok":
        what = "no face was found" if pred.status == "no_face" else "the video could not be read"
        data["notes"].append(f"{what}: {pred.reason or pred.status}; scored {pred.prob:.2f}")
    else:
        scores = np.asarray(pred.frame_scores, float)  # Ensemble.frame_scores, as --json has
        data["frame_scores"] = pred.frame_scores
        # The track that decided (with max over faces, the highest scoring one) and its most
        # fake frames; with one frame or one face, that is what there is.
        tracks = np.asarray(pred.tracks)
        rule = bundle.predictor.rule
        track_scores = {
            int(t): video_score(scores[tracks == t], tracks[tracks == t], rule)
            for t in np.unique(tracks)
        }
        top = max(track_scores, key=track_scores.get)
        in_top = np.flatnonzero(tracks == top)
        decided = in_top[np.argsort(-scores[in_top], kind="stable")[:PICKS]].tolist()
        order = np.argsort(-scores, kind="stable")
        picks = list(dict.fromkeys([*order[:PICKS].tolist(), *order[::-1][:PICKS].tolist()]))
        data.update(track_scores=track_scores, deciding_track=top, decided=decided, picks=picks,
                    pick_labels=pick_labels(picks, scores))  # fmt: skip
        if len(set(pred.frames)) == 1:
            data["notes"].append("one frame only: the timeline is a single point")
        n_tracks = len(track_scores)
        if n_tracks > 1:
            data["notes"].append(f"{n_tracks} faces tracked; track {top} decided the score")
        frames = getattr(bundle.predictor, "last_frames", {})
        shown = _frames_figure(frames, pred, scores, out / "frames.png")
        if shown:
            images.append((f"Sampled frames ({shown} of {len(set(pred.frames))})", "frames.png"))
        maps, effects = _explain(bundle, pred, picks, data)
        _timeline_figure(pred, scores, decided, effects, out / "timeline.png")
        images.append(("Timeline", "timeline.png"))
        if maps:
            _heatmap_figure(pred.crops, picks, scores, maps, out / "heatmaps.png")
            images.append(("Heatmaps: the most and least fake crops (Grad-CAM)", "heatmaps.png"))
    write_json(data, out / "report.json")
    page = out / "index.html"
    write_text(_page(data, images), page)
    return VideoReport(page, data, pred)


def report_folder(out_dir: str | Path, path: str | Path) -> Path:
    """The folder of ``path``'s report: ``out_dir/<stem>``, unless that folder already holds
    the report of another file of the same name (``a/clip.mp4`` and ``b/clip.mp4``); then
    ``out_dir/<stem>-<8 hex digits of the path>``. The same input always gets the same folder,
    and no report replaces another's."""
    path = Path(path)
    plain = Path(out_dir) / path.stem
    try:
        owner = json.loads((plain / "report.json").read_text()).get("path")
    except (OSError, ValueError):
        return plain  # a new folder (or one without a readable report: rewritten)
    if owner is None or Path(owner).resolve() == path.resolve():
        return plain
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return Path(out_dir) / f"{path.stem}-{digest}"


def _explain(bundle: InferenceBundle, pred: VideoPrediction, picks: list[int], data: dict):
    """Grad-CAM maps per frame run (its folds' maps averaged as the ensemble weighs them) and
    per-frame effects per sequence member, from the torch engine (recorded in ``data``).
    Only members that carry ensemble weight are explained: a map of a member weighted 0 shows
    what did not decide the verdict."""
    from dfdc.kinds import CropBatch

    engine = bundle.predictor.engine
    rt = getattr(engine, "rt", None)
    if rt is None:
        data["notes"].append("heatmaps need the torch engine (--engine torch); not drawn")
        return {}, {}
    batch = engine.last_batch  # the scoring's own: its inputs and pooled features are made
    if batch is None or batch.crops is not pred.crops:
        batch = CropBatch(pred.crops, pred.tracks, pred.frames, rt, engine.batch_size)
    weights = member_weights(bundle, [m.name for m in engine.models])
    by_run: dict[str, list[tuple[np.ndarray, float]]] = {}
    effects: dict[str, np.ndarray] = {}
    for m in engine.models:
        if weights.get(m.name, 0.0) <= 0:
            continue
        got = m.kind.explain(m, batch, picks)
        if "heatmaps" in got:
            by_run.setdefault(member_run(m.name), []).append((got["heatmaps"], weights[m.name]))
        if "frame_effect" in got:
            effects[m.name] = got["frame_effect"]
    maps = {
        run: np.average([h for h, _ in v], axis=0, weights=[w for _, w in v])
        for run, v in by_run.items()
    }
    data["explained"] = sorted(n for n, w in weights.items() if w > 0)
    unweighted = sorted(n for n, w in weights.items() if w <= 0)
    if unweighted:
        data["notes"].append(
            f"not explained (ensemble weight 0, so they did not decide): {', '.join(unweighted)}"
        )
    # 16x16 summaries of each map in the JSON (the PNG has them at full size).
    data["heatmaps"] = {
        run: [cv2.resize(c, (16, 16), interpolation=cv2.INTER_AREA).round(3).tolist() for c in v]
        for run, v in maps.items()
    }
    data["frame_effect"] = {k: [round(float(x), 6) for x in v] for k, v in effects.items()}
    return maps, effects


def read_report(folder: str | Path) -> dict:
    """A report's JSON (for scripts that re-aggregate it)."""
    return json.loads((Path(folder) / "report.json").read_text())


def mistakes(scores, k: int = 3) -> dict[str, list[dict]]:
    """The ``k`` most confident false positives (real videos scored highest) and false
    negatives (fakes scored lowest), among those on the wrong side of 0.5."""
    s = scores[scores["status"] == "ok"] if "status" in scores else scores
    fp = s[(s["label"] == 0) & (s["prob"] >= 0.5)].sort_values("prob", ascending=False)
    fn = s[(s["label"] == 1) & (s["prob"] < 0.5)].sort_values("prob")
    return {"false positives": fp.head(k).to_dict("records"),
            "false negatives": fn.head(k).to_dict("records")}  # fmt: skip


def evaluation_report(bundle: InferenceBundle, result, out_dir: str | Path, k: int = 3) -> Path:
    """``out_dir/index.html``: the metrics table, the ROC and reliability curves, and galleries of
    the most confident mistakes, each with its crop, heatmap and score, linking to its report
    (written under ``out_dir/videos/``). ``result``: an
    :class:`~dfdc.reports.evaluation.EvalResult`."""
    from dfdc.reports.evaluation import metrics_table
    from dfdc.reports.plots import plot_roc_reliability

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("index.html", "index.json"):  # a failed write below leaves no page
        (out / stale).unlink(missing_ok=True)
    s = result.scores
    summary = result.summary()
    table = metrics_table(summary).to_html(index=False, float_format=lambda v: f"{v:.4f}")
    if len(s) and s["label"].nunique() == 2:
        fig = plot_roc_reliability(s["label"].to_numpy(), s["prob"].to_numpy())
        try:
            save_figure(fig, out / "curves.png", dpi=80)
        finally:
            plt.close(fig)
        curves = '<h2>ROC and reliability</h2><img src="curves.png" alt="ROC and reliability">'
    else:
        curves = "<p class=note>one class only: no ROC or reliability curve</p>"
    galleries, listed = "", {}
    for title, rows in mistakes(s, k).items():
        cards = []
        for row in rows:
            rep = video_report(bundle, row["path"], out / "videos")
            rel = rep.page.relative_to(out).as_posix()
            folder = rep.page.parent.relative_to(out).as_posix()
            thumbs = [f for f in ("heatmaps.png", "frames.png") if (rep.page.parent / f).exists()]
            img = (
                f'<img src="{folder}/{thumbs[0]}" alt="{html.escape(row["name"])}">'
                if thumbs
                else html.escape(row["name"])
            )
            cards.append(
                f'<div class=card><a href="{html.escape(rel)}">{img}</a><br>'
                f"{html.escape(row['name'])}: {row['prob']:.3f}</div>"
            )
            listed.setdefault(title, []).append({"video": row["name"], "prob": row["prob"],
                                                 "report": rel})  # fmt: skip
        body = "".join(cards) or "<p>none</p>"
        galleries += f"<h2>Most confident {html.escape(title)}</h2>{body}"
    write_json({"summary": summary, "mistakes": listed}, out / "index.json")
    unscored = "".join(
        f"<li>{html.escape(u['path'])}: {html.escape(u['reason'])} ({u['status']})</li>"
        for u in result.unscored
    )
    unscored = f"<h2>Not scored</h2><ul>{unscored}</ul>" if unscored else ""
    page = out / "index.html"
    write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,"><title>Evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} img{{max-width:100%}}
.card{{display:inline-block;width:320px;margin:6px;vertical-align:top;font-size:0.9em}}
td,th{{border:1px solid #ccc;padding:3px 8px}} table{{border-collapse:collapse}}
.note{{color:#8a5a00}}</style></head><body><h1>Evaluation</h1>
<p>{html.escape(result.counts_line())}. Models {html.escape(result.trained_on)}</p>
{unscored}{table}{curves}{galleries}</body></html>
""",
        page,
    )
    return page


def plot_gallery(items: list[dict], per_row: int = 2):
    """The reports of ``items`` (``mistake_reports``' rows) as one figure: each video's heatmap
    strip (or its frames where it has none), titled with its kind of mistake and score."""
    shown = [it for it in items if Path(it["image"]).exists()]
    if not shown:
        return None
    rows = int(np.ceil(len(shown) / per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(7 * per_row, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, it in zip(axes.ravel(), shown, strict=False):
        ax.imshow(plt.imread(it["image"]))
        ax.set_title(f"{it['kind']}: {it['video']} ({it['prob']:.3f})", fontsize=9)
    fig.tight_layout()
    return fig


def mistake_reports(bundle_for, scores, out_dir: str | Path, k: int = 3) -> list[dict]:
    """A report for each of :func:`mistakes` (``bundle_for(row)``: the bundle that scores that
    video, e.g. its own fold's models for an out-of-fold video), as rows for a gallery."""
    items = []
    for kind, rows in mistakes(scores, k).items():
        for row in rows:
            rep = video_report(bundle_for(row), row["path"], out_dir)
            heat = rep.page.parent / "heatmaps.png"
            image = heat if heat.exists() else rep.page.parent / "frames.png"
            items.append({"kind": kind[:-1], "video": row["name"], "prob": rep.data["prob"],
                          "page": str(rep.page), "image": str(image)})  # fmt: skip
    return items
