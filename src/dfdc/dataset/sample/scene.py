"""Animate a still portrait into a clip: camera motion, lighting drift and sensor noise.

The scene is a pure function of its seed and the frame index, so a fake can be rendered from
exactly the same frames as its original and differ from it only where the face was changed,
as DFDC fakes are pixel-aligned with their originals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from dfdc.dataset.sample.exact import apply, sin
from dfdc.dataset.sample.photos import Photo

__all__ = ["Actor", "Scene"]

# Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner.
_FLIP_ORDER = [1, 0, 2, 4, 3]


@dataclass(frozen=True)
class Actor:
    """One person in a scene: a photo, mirrored or not, placed and moving on its own."""

    photo: Photo
    flip: bool = False
    # Where the face centre sits, as a fraction of the frame, and its height over min(W, H).
    anchor: tuple[float, float] = (0.5, 0.42)
    face_frac: float = 0.38

    def image_and_landmarks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, lm, box = self.photo.image, self.photo.landmarks.copy(), self.photo.box.copy()
        if self.flip:
            w = image.shape[1]
            image = image[:, ::-1]
            lm = lm[_FLIP_ORDER]
            lm[:, 0] = w - 1 - lm[:, 0]
            box = np.array([w - 1 - box[2], box[1], w - 1 - box[0], box[3]], dtype=np.float32)
        return np.ascontiguousarray(image), lm, box


def _person_alpha(shape: tuple[int, int], box: np.ndarray) -> np.ndarray:
    """Soft head-and-shoulders matte, so the photo's own backdrop fades into the scene's."""
    h, w = shape
    alpha = np.zeros((h, w), np.float32)
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    cv2.ellipse(
        alpha, (int(cx), int(cy + 0.1 * bh)), (int(0.85 * bw), int(1.0 * bh)), 0, 0, 360, 1, -1
    )
    cv2.ellipse(
        alpha, (int(cx), int(cy + 1.6 * bh)), (int(1.6 * bw), int(1.0 * bh)), 0, 0, 360, 1, -1
    )
    sigma = 0.12 * bw
    return cv2.GaussianBlur(alpha, (0, 0), sigma)


@dataclass
class Scene:
    actors: tuple[Actor, ...]
    width: int
    height: int
    seed: int
    noise_sigma: float = 2.5
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        # Smooth motion: a few sinusoids per degree of freedom with random phases.
        self._phase = rng.uniform(0, 2 * np.pi, size=(len(self.actors), 8))
        self._freq = rng.uniform(0.3, 0.9, size=(len(self.actors), 8))
        self._light_phase = rng.uniform(0, 2 * np.pi, size=4)
        self._background = self._make_background(rng)
        self._prepared = [self._prepare(a) for a in self.actors]

    def _make_background(self, rng: np.random.Generator) -> np.ndarray:
        pad = int(0.1 * max(self.width, self.height))
        w, h = self.width + 2 * pad, self.height + 2 * pad
        # A muted backdrop: grey levels with a little colour, like a room behind a speaker.
        grey = rng.uniform(60, 190, size=(4, 6, 1))
        coarse = (grey + rng.normal(0, 14, size=(4, 6, 3))).astype(np.float32)
        bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        texture = cv2.GaussianBlur(rng.normal(0, 12, size=(h, w, 3)).astype(np.float32), (0, 0), 3)
        return np.clip(bg + texture, 0, 255)

    def _prepare(self, actor: Actor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        image, lm, box = actor.image_and_landmarks()
        alpha = _person_alpha(image.shape[:2], box)
        return image.astype(np.float32), alpha, lm, box

    def transform(self, actor_index: int, t: int) -> np.ndarray:
        """2x3 similarity from photo pixels to frame pixels at frame ``t``."""
        actor = self.actors[actor_index]
        _, _, lm, box = self._prepared[actor_index]
        ph, fr = self._phase[actor_index], self._freq[actor_index]
        secs = t / 30.0
        wave = sin(2 * np.pi * fr * secs + ph)
        base = min(self.width, self.height)
        scale = actor.face_frac * base / float(box[3] - box[1]) * (1 + 0.06 * wave[0])
        angle = math.radians(4.0 * wave[1])
        cx = actor.anchor[0] * self.width + 0.04 * base * wave[2]
        cy = actor.anchor[1] * self.height + 0.03 * base * wave[3]
        c, s = scale * math.cos(angle), scale * math.sin(angle)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0]], np.float32)
        # The photo's face centre lands on (cx, cy).
        (mx, my) = apply(rot, lm.mean(axis=0)[None])[0]
        rot[:, 2] = [cx - mx, cy - my]
        return rot

    def landmarks(self, t: int) -> list[np.ndarray]:
        """Each actor's 5 landmarks in frame pixels at frame ``t``."""
        out = []
        for i, (_, _, lm, _) in enumerate(self._prepared):
            out.append(apply(self.transform(i, t), lm))
        return out

    def boxes(self, t: int) -> list[np.ndarray]:
        out = []
        for i, (_, _, _, box) in enumerate(self._prepared):
            m = self.transform(i, t)
            corners = np.array(
                [[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]]
            )
            pts = apply(m, corners)
            out.append(np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32))
        return out

    def render_clean(self, t: int) -> np.ndarray:
        """The noiseless, evenly lit frame (float32 RGB): what a manipulation edits."""
        pad = (self._background.shape[1] - self.width) // 2
        # The camera pans a little, so the backdrop moves against the people (parallax).
        dx = pad + 0.3 * pad * math.sin(0.4 * t / 30.0 + self._light_phase[3])
        bg_m = np.float32([[1, 0, -dx], [0, 1, -pad]])
        frame = cv2.warpAffine(self._background, bg_m, (self.width, self.height))
        for i, (image, alpha, _, _) in enumerate(self._prepared):
            m = self.transform(i, t)
            warped = cv2.warpAffine(image, m, (self.width, self.height), flags=cv2.INTER_LINEAR)
            a = cv2.warpAffine(alpha, m, (self.width, self.height))[..., None]
            frame = frame * (1 - a) + warped * a
        return frame

    def finish(self, clean: np.ndarray, t: int) -> np.ndarray:
        """Lighting drift and sensor noise, identical for an original and its fakes."""
        secs = t / 30.0
        gain = 1 + 0.1 * math.sin(2 * np.pi * 0.15 * secs + self._light_phase[0])
        tint = 1 + 0.03 * sin(2 * np.pi * 0.1 * secs + self._light_phase[1:4])
        rng = np.random.default_rng([self.seed, t])
        noise = rng.normal(0, self.noise_sigma, size=clean.shape).astype(np.float32)
        return np.clip(clean * (gain * tint) + noise, 0, 255).astype(np.uint8)
