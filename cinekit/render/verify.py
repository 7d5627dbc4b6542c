"""Checks run on every file before it gets its final name (``writers.commit``).

Each reads the file back the way a player or cinekit would: a PNG decodes completely at the
expected size; an MP4 has its ``moov`` atom, top-level boxes that add up to the file size
(a truncated file fails here without decoding) and decodes to the expected number of frames;
a GIF shows the expected number of frames; a JSON file parses; an ``.npz`` archive's members
are intact. A failed check is an ``EngineError`` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from cinekit.errors import EngineError

TEMP_MARK = ".tmp-"  # every temporary name holds it: one folder walk finds what a killed run left


def bad_file(path: Path, what: str) -> EngineError:
    return EngineError(f"wrote a broken file for {Path(path).name.split(TEMP_MARK)[0].lstrip('.')}: {what}")


def verify_png(path: Path, size: tuple[int, int] | None = None) -> None:
    """A PNG that decodes completely (at ``size`` = (width, height) when given)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise bad_file(path, f"not a PNG ({im.format})")
            im.load()  # decodes every row: a truncated file fails here
            got = im.size
    except EngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged data
        raise bad_file(path, f"PNG does not decode ({exc})") from None
    if size is not None and tuple(got) != tuple(size):
        raise bad_file(path, f"PNG is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")


def verify_json(path: Path) -> None:
    try:
        json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise bad_file(path, f"JSON does not parse ({exc})") from None


def verify_npz(path: Path) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise bad_file(path, f"archive does not open ({exc})") from None
    if bad is not None:
        raise bad_file(path, f"archive member {bad} is damaged")


def mp4_boxes(path: Path) -> list[str]:
    """Top-level MP4 box types; raises when a box runs past the end of the file (truncation)."""
    size = Path(path).stat().st_size
    boxes, pos = [], 0
    with open(path, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                raise bad_file(path, f"MP4 ends inside a box header at byte {pos}")
            length = int.from_bytes(head[:4], "big")
            kind = head[4:8].decode("latin-1")
            if length == 1:
                if len(head) < 16:
                    raise bad_file(path, f"MP4 ends inside a box header at byte {pos}")
                length = int.from_bytes(head[8:16], "big")
            elif length == 0:  # "to the end of the file"
                length = size - pos
            if length < 8 or pos + length > size:
                raise bad_file(path, f"MP4 box {kind!r} at byte {pos} runs past the end of the file (truncated)")
            boxes.append(kind)
            pos += length
    return boxes


def decoded_frames(path: Path) -> int:
    """How many video frames ffmpeg decodes from ``path`` (every frame decoded, errors fatal)."""
    import subprocess

    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-xerror", "-i", str(path),
           "-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise bad_file(path, f"video does not decode: {proc.stderr.strip()[-500:] or f'exit {proc.returncode}'}")
    frames = [line.split("=", 1)[1] for line in proc.stdout.splitlines() if line.startswith("frame=")]
    return int(frames[-1]) if frames else 0


def verify_mp4(path: Path, frames: int | None = None) -> None:
    """The container is whole (``moov`` present, boxes add up) and decodes to ``frames`` frames."""
    boxes = mp4_boxes(path)
    for needed in ("ftyp", "moov", "mdat"):
        if needed not in boxes:
            raise bad_file(path, f"MP4 has no {needed!r} atom (boxes: {', '.join(boxes) or 'none'})")
    if frames is not None:
        got = decoded_frames(path)
        if got != frames:
            raise bad_file(path, f"MP4 decodes to {got} frame(s), expected {frames}")


def verify_gif(path: Path, frames: int | None = None, size: tuple[int, int] | None = None,
               delay_ms: int | None = None) -> None:
    """A GIF that decodes, showing ``frames`` frames of ``delay_ms`` each. Pillow merges identical
    consecutive frames into one with the summed delay, so the count is of displayed frames."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            n, shown = getattr(im, "n_frames", 1), 0
            got = im.size
            for i in range(n):  # decode every frame; a merged frame counts for its delay / delay_ms
                im.seek(i)
                im.load()
                shown += max(1, round(int(im.info.get("duration", 0)) / delay_ms)) if delay_ms else 1
    except Exception as exc:  # noqa: BLE001
        raise bad_file(path, f"GIF does not decode ({exc})") from None
    if frames is not None and shown != frames:
        raise bad_file(path, f"GIF shows {shown} frame(s), expected {frames}")
    if size is not None and tuple(got) != tuple(size):
        raise bad_file(path, f"GIF is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")


def verifier_for(path: Path) -> Callable[[Path], None]:
    """The default check for a file by its suffix (no check for unknown kinds)."""
    return {".png": verify_png, ".json": verify_json, ".npz": verify_npz, ".mp4": verify_mp4,
            ".gif": verify_gif}.get(Path(path).suffix.lower(), lambda _p: None)
