"""Mouth opening from an audio file's loudness (an RMS envelope per video frame).

ffmpeg (the binary imageio-ffmpeg ships, as ``cinekit.studio.audio`` uses) decodes any
format to mono float32 PCM; the envelope is the RMS of each frame's window of samples, in
dB; the mouth opens with the level above a noise floor: silence (below ``SILENCE_DB`` full
scale, or ``RANGE_DB`` under the file's loud passages) is a closed mouth.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from cinekit.errors import UserError

RATE = 16000          # Hz: speech loudness needs no more
SILENCE_DB = -50.0    # dBFS: below this a mouth is shut whatever the file's level
RANGE_DB = 30.0       # dB between shut (the floor) and wide open (the file's loud passages)


def read_mono(path: Path, rate: int = RATE) -> np.ndarray:
    """The file's samples, mixed to mono float32 in [-1, 1] at ``rate`` Hz."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(path),
           "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise UserError(f"{path}: cannot read its audio ({last})",
                        hint="give an audio file ffmpeg can decode (wav, mp3, aac, flac, ogg)")
    return np.frombuffer(proc.stdout, np.float32).copy()


def rms_envelope(samples: np.ndarray, rate: int, fps: float, frames: int, start: float = 0.0) -> np.ndarray:
    """RMS ``(frames,)`` of each video frame's window (frame ``f`` covers ``start + [f, f+1) / fps``
    seconds; windows past the end of the audio are silent)."""
    out = np.zeros(frames)
    edges = np.round((start + np.arange(frames + 1) / fps) * rate).astype(np.int64)
    x = samples.astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    n = len(x)
    a, b = np.clip(edges[:-1], 0, n), np.clip(edges[1:], 0, n)
    ok = b > a
    out[ok] = np.sqrt((csum[b[ok]] - csum[a[ok]]) / (b[ok] - a[ok]))
    return out


def mouth_from_rms(rms: np.ndarray) -> np.ndarray:
    """Mouth opening ``(frames,)`` in [0, 1] from an RMS envelope (see the module note)."""
    db = 20.0 * np.log10(np.maximum(rms, 1e-9))
    loud = db[db > SILENCE_DB]
    if loud.size == 0:
        return np.zeros_like(rms)
    top = float(np.percentile(loud, 90))       # the file's loud passages: wide open
    floor = max(SILENCE_DB, top - RANGE_DB)
    return np.clip((db - floor) / max(top - floor, 1e-6), 0.0, 1.0)


def mouth_from_audio(path: Path, fps: float, frames: int, start: float = 0.0) -> np.ndarray:
    """Mouth opening per frame from the loudness of ``path`` (the shot's ``audio:``)."""
    return mouth_from_rms(rms_envelope(read_mono(path), RATE, fps, frames, start))
