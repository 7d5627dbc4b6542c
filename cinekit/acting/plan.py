"""Plan each shot character's face (``timeline.CharacterActing``) from the shot's fields.

Sources, strongest first, for the mouth and the eyes:
1. ``performance: footage.mp4`` on the shot character: the face captured from footage
   (``cinekit.capture.face.read_face_performance``) plays the mouth and the blinks;
2. the shot's ``audio:``: its loudness opens the mouth of each line's speaker during the line
   (a shot's audio without timed lines moves no mouth: it may be music or ambience);
3. timed ``dialogue:`` lines: mouth flaps, one per syllable, inside the speaker's lines;
and automatic seeded blinks in clips (``blinks: false`` turns them off) where no footage gives
the eyes. The expression weights come from ``expression:`` on the shot character and its keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.acting.performance import FacePerformance
from cinekit.acting.timeline import (
    CharacterActing,
    blink_track,
    character_seed,
    expression_weights,
    flap_track,
    within,
)


def shot_lines(shot) -> list:
    """The shot's timed dialogue lines (``[]`` when ``dialogue:`` is notes or absent)."""
    return [] if isinstance(shot.dialogue, str) else list(shot.dialogue)


def acting_files(shot, list_path: Path) -> list[Path]:
    """Files a shot's faces read: its audio (when it moves mouths) and footage performances."""
    out = []
    if shot.audio and shot.characters and shot_lines(shot):
        out.append((Path(list_path).parent / shot.audio).resolve())
    out += [(Path(list_path).parent / ch.performance).resolve() for ch in shot.characters if ch.performance]
    return out


def _expression_keys(pose) -> list[tuple[float, str, str]]:
    keys = getattr(pose, "keyframes", None) or []
    return [(k.at, k.expression, k.ease) for k in keys if k.expression is not None]


def _performance(path: Path, fps: float, frames: int, *, files=None, cache_dir=None) -> FacePerformance:
    """The face captured from footage, from the capture cache when ``files`` and ``cache_dir``
    are given (cinekit.capture.cache: a re-render does not run MediaPipe again)."""
    try:
        # lazy: the capture extra (mediapipe)
        from cinekit.capture.cache import cached_arrays
        from cinekit.capture.face import read_face_performance
    except ImportError as exc:
        from cinekit.errors import UserError

        raise UserError(f"{path}: reading a face performance from footage needs cinekit's face capture "
                        f"({exc})", hint="install the capture extra, or drop `performance:`") from None

    def capture() -> dict:
        perf = read_face_performance(path, fps, frames)
        return {"fps": np.float64(perf.fps), "mouth_open": perf.mouth_open, "eyes_closed": perf.eyes_closed}

    got = cached_arrays(path, "face", {"fps": float(fps), "n_frames": int(frames)},
                        ("fps", "mouth_open", "eyes_closed"), capture, files=files, cache_dir=cache_dir,
                        check=lambda a: a["fps"].shape == () and a["mouth_open"].shape == a["eyes_closed"].shape
                        == (frames,))
    perf = FacePerformance(float(got["fps"]), got["mouth_open"], got["eyes_closed"])
    return perf.resampled(fps, frames)


def plan_acting(shot, list_path: Path, frames: int, fps: float, seed: int,
                audio_mouth=None, performance=None, *, files=None, cache_dir=None) -> tuple[CharacterActing | None, ...]:
    """One ``CharacterActing`` per shot character (None where the face stays at rest).

    ``audio_mouth(path, fps, frames)`` and ``performance(path, fps, frames)`` read the files
    (injected by tests; default ``audio.mouth_from_audio`` and the face capture, cached by
    content in ``cache_dir`` when ``files`` (``FileDigests``) and ``cache_dir`` are given)."""
    from cinekit.pose.keyframes import sample_times

    if audio_mouth is None:
        from cinekit.acting.audio import mouth_from_audio as audio_mouth
    if performance is None:
        def performance(path, fps, frames):
            return _performance(path, fps, frames, files=files, cache_dir=cache_dir)
    times = sample_times(frames, fps)
    lines = shot_lines(shot)
    loud = None
    if shot.audio and shot.characters and lines:
        loud = audio_mouth((Path(list_path).parent / shot.audio).resolve(), fps, frames)
    out: list[CharacterActing | None] = []
    for ch in shot.characters:
        names, weights = expression_weights(ch.expression, _expression_keys(ch.pose), times)
        own = [(d.at, d.end, d.line) for d in lines if d.character == ch.name]
        if loud is not None:
            mouth = loud * within(own, frames, fps)
        else:
            mouth = flap_track(own, frames, fps)
        eyes = (blink_track(frames, fps, character_seed(seed, ch.name)) if ch.blinks and shot.kind == "clip"
                else np.zeros(frames))
        if ch.performance:
            perf = performance((Path(list_path).parent / ch.performance).resolve(), fps, frames)
            seen_m, seen_e = np.isfinite(perf.mouth_open), np.isfinite(perf.eyes_closed)
            mouth = np.where(seen_m, np.clip(np.nan_to_num(perf.mouth_open), 0, 1), mouth)
            eyes = np.where(seen_e, np.clip(np.nan_to_num(perf.eyes_closed), 0, 1), 0.0)
        acting = CharacterActing(names, weights, FacePerformance(fps, mouth, eyes))
        out.append(None if acting.is_rest() else acting)
    return tuple(out)
