"""Link per-frame detections into face tracks, fill the frames between, drop what is not a person.

Detection runs on some of the sampled frames only; tracks carry boxes to the others by linear
interpolation of box and landmarks. A track seen in too few detection frames is a hand, a face
on a T-shirt or a one-frame false positive, and is dropped; the best ``max_tracks`` by size and
confidence are kept, so a clip with two speakers keeps both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from dfdc.faces.boxes import iou
from dfdc.faces.detect import Detection

__all__ = ["Track", "TrackBox", "build_tracks", "iou"]


@dataclass
class TrackBox:
    box: np.ndarray
    landmarks: np.ndarray
    prob: float  # NaN where the box was carried, not detected
    detected: bool


@dataclass
class Track:
    # sampled-frame position -> detection
    hits: dict[int, Detection] = field(default_factory=dict)
    boxes: dict[int, TrackBox] = field(default_factory=dict)

    @property
    def last(self) -> int:
        return max(self.hits)

    def score(self) -> float:
        """Mean box area times mean probability: big, sure faces first."""
        areas = [(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in self.hits.values()]
        return float(np.mean(areas) * np.mean([d.prob for d in self.hits.values()]))


def build_tracks(
    detections: dict[int, list[Detection]],
    n_positions: int,
    iou_threshold: float = 0.3,
    max_gap: int = 2,
    min_fraction: float = 0.3,
    max_tracks: int = 2,
    carry: int = 0,
) -> list[Track]:
    """Tracks over sampled positions ``0..n_positions-1``.

    ``detections`` maps the positions where the detector ran to what it found (an empty list is
    a miss). A track survives up to ``max_gap`` missed detection runs; boxes are interpolated
    between its hits and carried ``carry`` positions past its first and last hit.
    """
    runs = sorted(detections)
    tracks: list[Track] = []
    active: list[Track] = []
    for step, pos in enumerate(runs):
        found = list(detections[pos])
        pairs = sorted(
            (
                (iou(t.hits[t.last].box, d.box), ti, di)
                for ti, t in enumerate(active)
                for di, d in enumerate(found)
            ),
            reverse=True,
        )
        used_t, used_d = set(), set()
        for overlap, ti, di in pairs:
            if overlap < iou_threshold or ti in used_t or di in used_d:
                continue
            active[ti].hits[pos] = found[di]
            used_t.add(ti)
            used_d.add(di)
        for di, d in enumerate(found):
            if di not in used_d:
                t = Track(hits={pos: d})
                tracks.append(t)
                active.append(t)
        # A track that missed more than max_gap runs in a row has ended.
        active = [t for t in active if runs.index(t.last) >= step - max_gap]

    need = max(1, int(np.ceil(min_fraction * len(runs))))
    kept = [t for t in tracks if len(t.hits) >= need]
    kept.sort(key=lambda t: t.score(), reverse=True)
    kept = kept[:max_tracks]
    for t in kept:
        _fill(t, n_positions, carry, max_gap, runs)
    return kept


def _fill(track: Track, n_positions: int, carry: int, max_gap: int, runs: list[int]) -> None:
    hits = sorted(track.hits)
    for pos in hits:
        d = track.hits[pos]
        track.boxes[pos] = TrackBox(d.box, d.landmarks, d.prob, True)
    for a, b in itertools.pairwise(hits):
        # Interpolate across the gap unless too many detection runs were missed inside it.
        missed = sum(1 for r in runs if a < r < b)
        if missed > max_gap:
            continue
        da, db = track.hits[a], track.hits[b]
        for pos in range(a + 1, b):
            w = (pos - a) / (b - a)
            track.boxes[pos] = TrackBox(
                (1 - w) * da.box + w * db.box,
                (1 - w) * da.landmarks + w * db.landmarks,
                float("nan"),
                False,
            )
    first, last = hits[0], hits[-1]
    for pos in range(max(0, first - carry), first):
        d = track.hits[first]
        track.boxes[pos] = TrackBox(d.box, d.landmarks, float("nan"), False)
    for pos in range(last + 1, min(n_positions, last + carry + 1)):
        d = track.hits[last]
        track.boxes[pos] = TrackBox(d.box, d.landmarks, float("nan"), False)
