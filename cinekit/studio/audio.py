"""The animatic's sound: the list's soundtrack and each shot's audio, mixed by ffmpeg into one WAV.

ffmpeg streams the mix (no sample array held here): a silent bed of exactly the episode's
length, the list's audio from 0, each shot's audio delayed to the shot's start and cut at its
end, summed without normalisation (a shot's line keeps its level when music plays under it).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from cinekit.errors import UserError

RATE = 48000


@dataclass(frozen=True)
class Cue:
    path: Path
    start: float                # seconds from the start of the episode
    seconds: float | None       # play at most this long (None: to the end of the episode)


def mix(cues: list[Cue], total: float, out: Path) -> Path:
    """Write ``out`` (16-bit stereo WAV, ``total`` seconds long) with every cue mixed in."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-v", "error",
           "-f", "lavfi", "-t", f"{total:.6f}", "-i", f"anullsrc=r={RATE}:cl=stereo"]
    chains, labels = [], ["[0:a]"]
    for k, cue in enumerate(cues, start=1):
        cmd += ["-i", str(cue.path)]
        trim = f",atrim=0:{cue.seconds:.6f}" if cue.seconds is not None else ""
        delay = round(cue.start * 1000)
        chains.append(f"[{k}:a]aresample={RATE},aformat=sample_fmts=fltp:channel_layouts=stereo{trim},"
                      f"asetpts=PTS-STARTPTS,adelay=delays={delay}:all=1[a{k}]")
        labels.append(f"[a{k}]")
    graph = ";".join(chains + [f"{''.join(labels)}amix=inputs={len(labels)}:duration=first:"
                                f"dropout_transition=0:normalize=0[out]"])
    cmd += ["-filter_complex", graph, "-map", "[out]", "-c:a", "pcm_s16le", "-ar", str(RATE), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        names = ", ".join(c.path.name for c in cues)
        raise UserError(f"could not read the audio ({names}): {proc.stderr.strip().splitlines()[-1:]}",
                        hint="give audio files ffmpeg can decode (wav, mp3, aac, flac, ogg)")
    return out
