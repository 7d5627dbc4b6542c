"""The H.264 encoder process, driven frame by frame, with its failures reported.

``imageio_ffmpeg.write_frames`` builds the right ffmpeg command but never looks at how ffmpeg
ended: an encoder killed by a file-size limit (SIGXFSZ), a full disk or the OOM killer leaves a
truncated MP4 and no error. ``Mp4Encoder`` runs the same command (so the bytes are the same),
keeps ffmpeg's messages, and raises an ``EngineError`` with them when ffmpeg does not exit 0.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from cinekit.errors import EngineError, UserError

# Bit-exact flags keep the bytes reproducible for the same frames on the same machine.
OUTPUT_PARAMS = ["-crf", "18", "-preset", "medium", "-movflags", "+faststart",
                 "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]


def ffmpeg_command(path: Path, width: int, height: int, fps: float) -> list[str]:
    """The command ``imageio_ffmpeg.write_frames`` builds for cinekit's settings (rgb24 in, yuv420p out)."""
    import imageio_ffmpeg

    rate = str(Fraction(fps).limit_denominator())
    return [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}",
            "-pix_fmt", "rgb24", "-r", rate, "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p",
            "-v", "error", *OUTPUT_PARAMS, str(path)]


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {"SIGXFSZ": " (file-size limit exceeded)", "SIGKILL": " (killed, e.g. out of memory)"}.get(name, "")
        return f"was killed by {name}{why}"
    return f"exited with status {code}"


class Mp4Encoder:
    """``send(frame)`` (H, W, 3) uint8 frames, then ``close()``; ``kill()`` on abort.

    The size is taken from the first frame; every frame must match it.
    """

    def __init__(self, path: Path, fps: float, label: str | None = None):
        self.path, self.fps, self.label = Path(path), float(fps), label or Path(path).name
        self.proc: subprocess.Popen | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._log = tempfile.TemporaryFile()  # ffmpeg's stderr: a file, so a chatty ffmpeg never blocks

    def _start(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise UserError(f"H.264 needs even sizes, got {width}x{height}")
        self.size = (width, height)
        try:
            # restore_signals (the default) gives ffmpeg the default SIGXFSZ/SIGPIPE actions.
            self.proc = subprocess.Popen(ffmpeg_command(self.path, width, height, self.fps), stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=self._log)
        except OSError as exc:
            raise EngineError(f"cannot start the video encoder for {self.label}: {exc}") from None

    def send(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise EngineError(f"{self.label}: frame of shape {frame.shape}, expected (H, W, 3)")
        if self.proc is None:
            self._start(frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != self.size:
            raise EngineError(f"{self.label}: frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, "
                              f"expected {self.size[0]}x{self.size[1]}")
        try:
            self.proc.stdin.write(memoryview(frame).cast("B"))
        except (BrokenPipeError, OSError):
            self._fail()  # the encoder is gone: say why
        self.frames += 1

    def close(self) -> None:
        """Finish the file; raise ``EngineError`` with ffmpeg's message if it did not exit 0."""
        if self.proc is None:
            raise EngineError(f"{self.label}: no frames to encode")
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self.proc.wait() != 0:
            self._fail()
        self._log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def _messages(self) -> str:
        try:
            self._log.seek(0)
            text = self._log.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return text[-800:]

    def _fail(self) -> None:
        assert self.proc is not None
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = self.proc.wait()
        messages = self._messages()
        self._log.close()
        raise EngineError(f"the video encoder (ffmpeg) {describe_exit(code)} while writing {self.label} "
                          f"after {self.frames} frame(s)" + (f": {messages}" if messages else ""))
