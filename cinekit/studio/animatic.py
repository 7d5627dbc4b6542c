"""`cinekit animatic`: the episode as one movie, shot after shot, streamed frame by frame.

Each shot lasts what it lasts in the edit: a clip its rendered frames / fps, resampled by time
to the animatic's rate; a still its hold. Shot boundaries are placed on the episode's time
axis (``round(start * fps)``), so the movie is the sum of the shots to within one frame
whatever the rates. Every frame carries a slate band (list, shot id, n/N) and SMPTE timecode;
``slate`` seconds > 0 also put a title card before each shot. Memory does not grow with the
episode: one decoded frame per source, one encoder pipe.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from cinekit.errors import UserError
from cinekit.studio import media
from cinekit.studio.episode import Episode, EpisodeShot

FORMATS = ("mp4", "prores", "png", "exr")
SUFFIX = {"mp4": ".mp4", "prores": ".mov", "png": "", "exr": ""}   # png/exr: a folder of frames


@dataclass(frozen=True)
class Cut:
    shot: EpisodeShot
    slate_start: int            # first frame of the title card (== start when there is none)
    start: int                  # first frame of the shot's picture in the movie
    frames: int                 # frames of picture


@dataclass
class AnimaticResult:
    path: Path
    format: str
    fps: float
    size: tuple[int, int]
    frames: int
    cuts: list[Cut]
    audio: bool

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def plan_cuts(episode: Episode, fps: float, slate: float = 0.0) -> list[Cut]:
    """Frame ranges of every shot (and its title card) at ``fps`` on the episode's time axis."""
    cuts, t, offset = [], 0.0, 0
    card = media.frame_count(slate, fps) if slate > 0 else 0
    for s in episode.shots:
        a, b = media.frame_count(t, fps), media.frame_count(t + s.seconds, fps)
        t += s.seconds
        cuts.append(Cut(s, a + offset, a + offset + card, max(1, b - a)))
        offset += card + max(1, b - a) - (b - a)   # a shot shorter than a frame still shows one
    return cuts


# --------------------------------------------------------------------------- drawing
@functools.lru_cache(maxsize=8)
def _font(size: int):
    """The default FreeType font at ``size`` (loaded once: loading it per frame cost more than drawing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def timecode_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the opaque timecode box at the bottom right of a ``size`` frame."""
    w, h = size
    fs = max(10, h // 16)
    bw, bh = fs * 15 // 2, fs + fs // 2
    return w - bw - fs // 2, h - bh - fs // 3, w - fs // 2, h - fs // 3


def burn_timecode(frame: np.ndarray, text: str) -> np.ndarray:
    """Draw ``text`` in an opaque black box (``timecode_box``) onto a copy of ``frame``.

    Only the box is drawn (then pasted): converting the whole frame to PIL and back every
    frame cost more than the encoder.
    """
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = timecode_box((w, h))
    box = Image.new("RGB", (x1 - x0, y1 - y0), (0, 0, 0))
    fs = max(10, h // 16)
    ImageDraw.Draw(box).text((fs // 3, fs // 5), text, fill=(255, 255, 255), font=_font(fs))
    out = frame.copy()
    out[y0:y1, x0:x1] = np.asarray(box)
    return out


def _slate_band(frame: np.ndarray, left: str, right: str) -> np.ndarray:
    """A translucent band across the top with the shot's slate text (the picture stays visible)."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    fs = max(10, h // 18)
    band = fs + fs // 2
    img = Image.fromarray(frame[:band] // 5)   # dark enough to read over any picture; only the band is drawn
    d = ImageDraw.Draw(img)
    font = _font(fs)
    d.text((fs // 2, fs // 4), left, fill=(255, 255, 255), font=font)
    tw = d.textlength(right, font=font)
    d.text((w - tw - fs // 2, fs // 4), right, fill=(255, 220, 120), font=font)
    out = frame.copy()
    out[:band] = np.asarray(img)
    return out


def title_card(size: tuple[int, int], episode: Episode, shot: EpisodeShot) -> np.ndarray:
    """A black card naming the shot (id, n/N, duration, camera, prompt) before its picture."""
    import textwrap

    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, (12, 12, 16))
    d = ImageDraw.Draw(img)
    big, small = _font(max(12, h // 8)), _font(max(10, h // 20))
    d.text((w // 12, h // 6), shot.id, fill=(255, 255, 255), font=big)
    info = f"{episode.name} · shot {shot.index + 1}/{len(episode.shots)} · {shot.seconds:.2f} s · {shot.camera}"
    d.text((w // 12, h // 6 + h // 6), info, fill=(255, 220, 120), font=small)
    for k, line in enumerate(textwrap.wrap(shot.prompt, width=max(20, w // max(6, h // 36)))[:4]):
        d.text((w // 12, h // 2 + k * (h // 14)), line, fill=(200, 200, 210), font=small)
    return np.asarray(img)


# --------------------------------------------------------------------------- frames
def episode_frames(episode: Episode, cuts: list[Cut], fps: float, size: tuple[int, int], *,
                   start_tc: int = 0, burn_in: bool = True) -> Iterator[np.ndarray]:
    """Every frame of the movie in order, ``(H, W, 3)`` uint8; one source frame decoded at a time."""
    n = 0
    total = len(cuts)
    for k, cut in enumerate(cuts):
        s = cut.shot
        left = f"{episode.name}  {s.id}"
        right = f"{k + 1}/{total}  {s.seconds:.2f}s"
        if cut.start > cut.slate_start:
            card = title_card(size, episode, s)
            for _ in range(cut.start - cut.slate_start):
                yield burn_timecode(card, media.smpte(n, fps, start_tc)) if burn_in else card
                n += 1
        if s.kind == "clip":
            idx = media.source_indices(cut.frames, s.frames, s.fps, fps)
            source = media.resampled(s.main, idx)
        else:
            still = media.first_frame(s.main)
            source = (still for _ in range(cut.frames))
        banded = None
        prev = None
        for frame in source:
            if frame is not prev:  # a held frame (still, slow clip) is fitted and banded once
                prev = frame
                banded = media.fit(frame, size)
                if burn_in:
                    banded = _slate_band(banded, left, right)
            yield burn_timecode(banded, media.smpte(n, fps, start_tc)) if burn_in else banded
            n += 1


def _size(episode: Episode, size: tuple[int, int] | None) -> tuple[int, int]:
    w, h = size or episode.shots[0].size
    if w <= 0 or h <= 0:
        raise UserError(f"animatic size {w}x{h} is not a size", hint="pass --size WIDTHxHEIGHT")
    return w + w % 2, h + h % 2   # H.264 / 4:2:0 needs even sizes


def _encoder(fmt: str, path: Path, size, fps: float, tc: str, audio: Path | None):
    import imageio_ffmpeg

    if fmt == "prores":
        codec, pix, params, acodec = "prores_ks", "yuv422p10le", ["-profile:v", "3", "-vendor", "apl0"], "pcm_s16le"
    else:
        codec, pix, acodec = "libx264", "yuv420p", "aac"
        params = ["-crf", "20", "-preset", "veryfast", "-movflags", "+faststart"]
    writer = imageio_ffmpeg.write_frames(
        str(path), size, fps=fps, codec=codec, pix_fmt_out=pix, quality=None, macro_block_size=1,
        ffmpeg_log_level="error",
        # the container is named, not guessed from the suffix (-o review.prores, -o cut.v2)
        output_params=params + ["-timecode", tc, "-map_metadata", "-1", "-f", "mov" if fmt == "prores" else "mp4"],
        audio_path=str(audio) if audio else None, audio_codec=acodec if audio else None)
    writer.send(None)
    return writer


def write_animatic(episode: Episode, out: Path, *, fmt: str = "mp4", fps: float | None = None,
                   size: tuple[int, int] | None = None, slate: float = 0.0, start_tc: str = "00:00:00:00",
                   burn_in: bool = True) -> AnimaticResult:
    """Write the movie (MP4 / MOV file, or a folder of PNG frames + ``audio.wav``) atomically."""
    from cinekit.render.writers import atomic_path
    from cinekit.studio.audio import Cue, mix

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    fps = float(fps or episode.fps)
    if fps <= 0 or slate < 0:
        raise UserError("--fps must be > 0 and --slate >= 0")
    try:
        tc0 = media.parse_smpte(start_tc, fps)
    except ValueError as exc:
        raise UserError(f"--start-timecode: {exc}") from None
    size = _size(episode, size)
    cuts = plan_cuts(episode, fps, slate)
    total = cuts[-1].start + cuts[-1].frames if cuts else 0
    cues = [Cue(episode.audio, 0.0, None)] if episode.audio else []
    cues += [Cue(c.shot.audio, c.start / fps, c.frames / fps) for c in cuts if c.shot.audio]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        wav = mix(cues, total / fps, work / "audio.wav") if cues else None
        frames = episode_frames(episode, cuts, fps, size, start_tc=tc0, burn_in=burn_in)
        if fmt in ("png", "exr"):
            from PIL import Image

            from cinekit.studio.exr import write_exr

            seq = work / "frames"
            seq.mkdir()
            for i, frame in enumerate(frames):
                if fmt == "exr":
                    write_exr(seq / f"{i:06d}.exr", frame)
                else:
                    Image.fromarray(frame).save(seq / f"{i:06d}.png", compress_level=1)
            if wav is not None:
                os.replace(wav, seq / "audio.wav")
            if out.exists():
                if not (out.is_dir() and all(p.suffix in (".png", ".exr", ".wav") for p in out.iterdir())):
                    raise UserError(f"{out} exists and is not an animatic frame folder; refusing to replace it")
                shutil.rmtree(out)
            os.replace(seq, out)
        else:
            with atomic_path(out) as tmp:
                writer = _encoder(fmt, tmp, size, fps, media.smpte(0, fps, tc0), wav)
                try:
                    for frame in frames:
                        writer.send(frame)
                finally:
                    writer.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return AnimaticResult(out, fmt, fps, size, total, cuts, bool(cues))


def default_path(episode: Episode, fmt: str) -> Path:
    return episode.renders / f"{episode.name}.animatic{SUFFIX[fmt]}"
