"""A talking face in footage -> a ``FacePerformance`` (mouth opening and eye closure per frame).

Measures on MediaPipe's face mesh (478 landmarks, refined lips and eyes), in 3-D landmark
space (x, y, and z, which MediaPipe scales like x) so a turned head does not read as a closed
mouth:

- **mouth**: the inner-lip gap (landmarks 13-14) over the face's own size, the distance
  between the outer eye corners (33-263), which the jaw does not move. That ratio is ~0.01
  with the lips together and ~0.3 for a wide "ah" (measured on footage/talkinghead-1.mp4:
  5th percentile 0.010, median 0.099, 99th 0.331); ``mouth_open`` maps
  ``[MOUTH_CLOSED, MOUTH_WIDE]`` linearly onto [0, 1].
- **eyes**: the eye aspect ratio (Soukupova and Cech, "Real-Time Eye Blink Detection using
  Facial Landmarks", CVWW 2016): three lid-to-lid distances over the eye's width, averaged over
  both eyes. Eyes differ between people, so "open" is this performer's own typical aperture
  (the 75th percentile over the clip; ``EYE_OPEN_DEFAULT`` when fewer than ``MIN_FRAMES`` frames
  see the face); ``eyes_closed`` is 0 at that aperture and 1 at ``EYE_SHUT`` x it.

No smoothing: a blink lasts 3-4 frames at 25 fps and a filter would flatten it; the mesh's
own jitter is ~0.005 of the face size. Frames without a face stay NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.acting.performance import FacePerformance
from cinekit.capture import footage, mediapipe_graphs

MOUTH_CLOSED = 0.02      # inner-lip gap / outer-eye-corner distance: lips together
MOUTH_WIDE = 0.35        # ... a wide open mouth
EYE_SHUT = 0.3           # eye aspect ratio / the performer's open ratio: shut
EYE_OPEN_DEFAULT = 0.28  # a typical open eye aspect ratio, for clips too short to learn one
MIN_FRAMES = 10

_LIPS = (13, 14)
_EYE_CORNERS = (33, 263)
# (outer corner, inner corner, (upper, lower) lid pairs) per eye, MediaPipe face-mesh indices
_EYES = ((33, 133, ((160, 144), (159, 145), (158, 153))),
         (263, 362, ((387, 373), (386, 374), (385, 380))))


def _dist(points: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(points[:, a] - points[:, b], axis=-1)


def mouth_ratio(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap over the outer-eye-corner distance ``(F, 478, 3) -> (F,)`` (NaN: no face)."""
    return _dist(points, *_LIPS) / _dist(points, *_EYE_CORNERS)


def eye_ratio(points: np.ndarray) -> np.ndarray:
    """Eye aspect ratio averaged over both eyes ``(F, 478, 3) -> (F,)`` (NaN: no face)."""
    per_eye = [sum(_dist(points, up, lo) for up, lo in lids) / (len(lids) * _dist(points, outer, inner))
               for outer, inner, lids in _EYES]
    return (per_eye[0] + per_eye[1]) / 2.0


def performance_from_ratios(mouth: np.ndarray, eyes: np.ndarray, fps: float) -> FacePerformance:
    """Raw ratios ``(F,)`` -> a ``FacePerformance`` in [0, 1] (the normalisation of the docstring)."""
    mouth_open = np.clip((mouth - MOUTH_CLOSED) / (MOUTH_WIDE - MOUTH_CLOSED), 0.0, 1.0)
    seen = eyes[np.isfinite(eyes)]
    open_ratio = float(np.percentile(seen, 75)) if seen.size >= MIN_FRAMES else EYE_OPEN_DEFAULT
    eyes_closed = np.clip((1.0 - eyes / open_ratio) / (1.0 - EYE_SHUT), 0.0, 1.0)
    return FacePerformance(fps, mouth_open, eyes_closed)


def read_face_ratios(path: str | Path, step: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(source frame indices, mouth ratios, eye ratios, source fps)`` of the frames read
    (every ``step``-th source frame); NaN where no face was found."""
    mediapipe_graphs.require("face capture")
    p = Path(path)
    fps = footage.source_fps(p)
    index, images = [], []
    for i, rgb in footage.frames(p, step=max(1.0, step)):
        index.append(i)
        images.append(rgb)
    marks = mediapipe_graphs.run(mediapipe_graphs.FACE, images)
    points = np.stack([m[:, :3] if m is not None else np.full((mediapipe_graphs.FACE.n_landmarks, 3), np.nan)
                       for m in marks]) if marks else np.zeros((0, mediapipe_graphs.FACE.n_landmarks, 3))
    return np.asarray(index, dtype=np.int64), mouth_ratio(points), eye_ratio(points), fps


def read_face_performance(path: str | Path, fps: float, n_frames: int | None = None) -> FacePerformance:
    """The face performance in footage, sampled at ``fps`` for ``n_frames`` frames (default: the
    footage's length). Only the source frames needed at that rate are analysed; frames past the
    footage's end, and frames where no face is found, are NaN."""
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    mediapipe_graphs.require("face capture")
    src_index, mouth, eyes, src_fps = read_face_ratios(path, step=src_fps_step(path, fps))
    full = performance_from_ratios(mouth, eyes, src_fps)   # normalised over every frame read
    if n_frames is None:
        n_frames = int(np.floor((src_index[-1] + 1) * fps / src_fps)) if src_index.size else 0
    want = np.arange(n_frames) * src_fps / fps             # source frame (fractional) per output frame
    out_mouth, out_eyes = np.full(n_frames, np.nan), np.full(n_frames, np.nan)
    if src_index.size:
        # the nearest frame read (chunked: 10^4 output x 10^4 source frames stay small)
        pick = np.concatenate([np.abs(w[:, None] - src_index[None, :]).argmin(axis=1)
                               for w in np.array_split(want, max(1, n_frames // 2048))]) if n_frames else want
        inside = want <= src_index[-1] + 0.5
        out_mouth[inside] = full.mouth_open[pick[inside]]
        out_eyes[inside] = full.eyes_closed[pick[inside]]
    return FacePerformance(float(fps), out_mouth, out_eyes)


def src_fps_step(path: str | Path, fps: float) -> float:
    """How many source frames per output frame (>= 1: a faster output rate re-uses frames)."""
    return max(1.0, footage.source_fps(Path(path)) / fps)
