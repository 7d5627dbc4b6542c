"""A character's face over a shot, frame by frame: expression weights, blinks, mouth flaps.

Pure functions on numpy arrays (no I/O): the planner calls them once per shot and puts the
result (``CharacterActing``) in the job, so every engine draws the same face.

- expressions: a base expression (the shot character's ``expression:``); each keyframe that
  says ``expression:`` changes the face by a short cross-fade (``FADE``) ending at the key,
  shaped by its ``ease`` (``hold``: a cut at the key); keys without one keep the face.
- blinks: a renewal process, seeded: gaps drawn uniformly in ``BLINK_GAP`` seconds (people
  blink about every 2-6 s at rest: Bentivoglio et al. 1997, "Analysis of blink rate patterns
  in normal subjects", Mov. Disord. 12(6), mean ~17 blinks/min); each blink lasts
  ``BLINK_SECONDS`` (100-300 ms), at least 2 and at most 5 frames.
- mouth flaps from dialogue timing: one open-close per syllable of the line (vowel groups,
  at least ~4 per second of line when the text is short), spread over the line's interval;
  closed outside every line.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from cinekit.acting.performance import FacePerformance

NEUTRAL = "neutral"
FADE = 0.25                   # seconds: an expression key's cross-fade (ending at the key)
BLINK_GAP = (2.0, 6.0)        # seconds between blinks (uniform)
BLINK_SECONDS = 0.18          # one blink, close to open
BLINK_FRAMES = (2, 5)
SYLLABLES_PER_SECOND = (3.0, 6.0)   # speech rate range the flaps are kept within


@dataclass(frozen=True, eq=False)
class CharacterActing:
    """One character's face over a shot: ``weights`` ``(frames, len(names))`` sum to 1 per
    frame (``names[0]`` is ``neutral``), ``face`` the per-frame mouth opening and eye closure."""

    names: tuple[str, ...]
    weights: np.ndarray
    face: FacePerformance

    @property
    def frames(self) -> int:
        return int(self.weights.shape[0])

    def is_rest(self) -> bool:
        """Neutral face, eyes open and mouth shut on every frame (nothing to draw)."""
        return (bool(np.all(self.weights[:, 0] >= 1.0))
                and not np.nan_to_num(self.face.mouth_open).any() and not np.nan_to_num(self.face.eyes_closed).any())

    def state(self, f: int) -> tuple[dict[str, float], float, float]:
        """``({expression: weight}, mouth_open, eyes_closed)`` at frame ``f`` (weights > 0 only)."""
        w = {n: float(v) for n, v in zip(self.names, self.weights[f], strict=True) if v > 0}
        return w, float(np.nan_to_num(self.face.mouth_open[f])), float(np.nan_to_num(self.face.eyes_closed[f]))

    def digest_bytes(self) -> bytes:
        """What identifies it in a job record (names and every per-frame value)."""
        parts = ["|".join(self.names).encode(), np.ascontiguousarray(self.weights, np.float64).tobytes(),
                 np.ascontiguousarray(self.face.mouth_open, np.float64).tobytes(),
                 np.ascontiguousarray(self.face.eyes_closed, np.float64).tobytes()]
        return b"\0".join(parts)


def character_seed(seed: int, name: str) -> int:
    """A per-character seed (two characters of one shot do not blink in step)."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def expression_weights(base: str | None, keys: list[tuple[float, str, str]], times: np.ndarray
                       ) -> tuple[tuple[str, ...], np.ndarray]:
    """``(names, weights (frames, K))`` from a base expression and keys ``(at, name, ease)``.

    Before the first key the face is ``base`` (neutral when None); each key changes it to its
    expression by a cross-fade of ``FADE`` seconds (never before the previous key) that ends
    at the key, shaped by the key's ``ease``; ``hold`` is a cut at the key. Why not fade over
    the whole gap as poses do: two drawn faces blended for a second show both at once (a
    ghost); a face changes in a fraction of a second, as an animator's swap or dissolve does.
    """
    from cinekit.pose.easing import ease

    keys = sorted(keys, key=lambda k: k[0])
    names = [NEUTRAL]
    for n in [base or NEUTRAL] + [k[1] for k in keys]:
        if n not in names:
            names.append(n)
    col = {n: i for i, n in enumerate(names)}
    w = np.zeros((len(times), len(names)))
    w[:, col[base or NEUTRAL]] = 1.0
    prev_t, prev_n = 0.0, base or NEUTRAL
    for at, name, how in keys:
        start = max(min(prev_t, at), at - FADE)
        u = (times >= at).astype(float) if at <= start or how == "hold" else ease(how, (times - start) / (at - start))
        after = times >= start
        mix = np.zeros((len(times), len(names)))
        mix[:, col[prev_n]] += 1.0 - u
        mix[:, col[name]] += u
        w[after] = mix[after]
        prev_t, prev_n = at, name
    return tuple(names), w


def blink_track(frames: int, fps: float, seed: int) -> np.ndarray:
    """Eye closure ``(frames,)`` in [0, 1] with seeded blinks (see the module note).

    Each blink is a run of 2-5 frames above 0.5 (the lid half down on the first and last
    frame when the run is 4 or more long, shut between)."""
    out = np.zeros(frames)
    if frames < 2:
        return out
    rng = np.random.default_rng(seed)
    n = int(np.clip(round(BLINK_SECONDS * fps), *BLINK_FRAMES))
    shape = np.ones(n)
    if n >= 4:
        shape[0] = shape[-1] = 0.6
    t = rng.uniform(0.4, BLINK_GAP[1] - 1.0)   # the first blink: soon, but not on frame 0
    while True:
        f0 = int(round(t * fps))
        if f0 + n > frames:
            break
        out[f0:f0 + n] = shape
        t += n / fps + rng.uniform(*BLINK_GAP)
    return out


def blink_runs(eyes_closed: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int]]:
    """``[(first frame, length)]`` of the runs where the eyes are more than ``threshold`` shut."""
    shut = np.concatenate([[False], np.nan_to_num(eyes_closed) > threshold, [False]])
    edges = np.flatnonzero(np.diff(shut.astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def syllables(text: str) -> int:
    """A rough syllable count: vowel groups per word, a final silent ``e`` dropped (English),
    at least one per word."""
    count = 0
    for w in re.findall(r"[^\W\d_]+", text.lower()):
        groups = len(re.findall(r"[aeiouyàâäéèêëîïôöùûüœæ]+", w))
        if groups > 1 and w.endswith("e") and not w.endswith(("le", "ee")) and w[-2:-1] not in "aeiouy":
            groups -= 1
        count += max(1, groups)
    return count


def flap_track(lines: list[tuple[float, float, str]], frames: int, fps: float) -> np.ndarray:
    """Mouth opening ``(frames,)`` in [0, 1] for spoken ``lines`` ``(at, end, text)`` seconds.

    One open-close (a raised-cosine pulse) per syllable, evenly spread over the line, the
    count kept within ``SYLLABLES_PER_SECOND`` of the line's length (a line without text
    flaps at 4 a second); zero outside every line.
    """
    t = np.arange(frames) / fps
    out = np.zeros(frames)
    for at, end, text in lines:
        length = end - at
        if length <= 0:
            continue
        lo, hi = SYLLABLES_PER_SECOND
        n = syllables(text) if text.strip() else round(4.0 * length)
        n = int(np.clip(n, max(1, round(lo * length)), max(1, round(hi * length))))
        inside = (t >= at) & (t < end)
        phase = (t[inside] - at) / length * n          # syllable k spans [k, k + 1)
        frac = phase - np.floor(phase)
        # open peaks mid-syllable; 0.85: a talking mouth rarely opens all the way
        out[inside] = np.maximum(out[inside], 0.85 * np.sin(np.pi * frac) ** 2)
    return out


def within(lines: list[tuple[float, float, str]], frames: int, fps: float) -> np.ndarray:
    """``(frames,)`` bool: frames inside any of ``lines``."""
    t = np.arange(frames) / fps
    out = np.zeros(frames, bool)
    for at, end, _ in lines:
        out |= (t >= at) & (t < end)
    return out


def encode_acting(acting: tuple, encode) -> list:
    """The faces of a job for its sidecar (``encode``: the pose track's lossless array codec)."""
    return [None if a is None else {"names": list(a.names), "weights": encode(a.weights),
                                    "mouth_open": encode(a.face.mouth_open), "eyes_closed": encode(a.face.eyes_closed)}
            for a in acting]


def decode_acting(data: list, decode, fps: float) -> tuple:
    """``encode_acting``'s inverse."""
    return tuple(None if d is None else CharacterActing(
        tuple(d["names"]), decode(d["weights"]),
        FacePerformance(fps, decode(d["mouth_open"]), decode(d["eyes_closed"]))) for d in data)
