"""Atomic writers for stills, clips and sidecars.

Every file is written to a temporary name in the same folder and renamed into place, so a
killed render never leaves a half-written output. A file that exists but was not written by
cinekit (no sidecar record, no PNG text record) is never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from cinekit.errors import UserError

METADATA_KEY = "cinekit"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:  # the bytes reach the disk before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def sidecar_path(output: Path) -> Path:
    return Path(output).with_suffix(".json")


def written_by_cinekit(path: Path) -> bool:
    """True when ``path`` carries cinekit's record (PNG text chunk, or a sidecar naming it)."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        try:
            from PIL import Image

            with Image.open(path) as im:
                if METADATA_KEY in getattr(im, "text", {}):
                    return True
        except Exception:  # noqa: BLE001 - an unreadable file is simply "not ours"
            return False
    for candidate in (sidecar_path(path), path.parent / (path.name.split(".")[0] + ".json")):
        if candidate.is_file():
            try:
                record = json.loads(candidate.read_text())
            except (OSError, ValueError):
                continue
            if METADATA_KEY in record and (candidate == path or path.name in record.get("files", {})):
                return True  # the sidecar itself, or a file it lists
    return False


def ensure_writable(path: Path, force: bool = False) -> None:
    path = Path(path)
    if path.exists() and not force and not written_by_cinekit(path):
        raise UserError(f"{path} exists and was not written by cinekit; refusing to overwrite it",
                        hint="move it away, or choose another output folder with --out")


def write_png(path: Path, image: np.ndarray, record: dict[str, Any] | None = None) -> Path:
    """``image`` (H, W, 3) uint8 -> PNG with the job record in a text chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if record is not None:
        info.add_text(METADATA_KEY, json.dumps(record, sort_keys=True))
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp, format="PNG", pnginfo=info)
    return Path(path)


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> Path:
    """``frames`` (F, H, W, 3) uint8 -> H.264 yuv420p MP4 that browsers play, exactly F frames.

    Bit-exact flags keep the bytes reproducible for the same frames on the same machine.
    """
    import imageio_ffmpeg

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w, _ = frames.shape
    if w % 2 or h % 2:
        raise UserError(f"H.264 needs even sizes, got {w}x{h}")
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
            macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-crf", "18", "-preset", "medium", "-movflags", "+faststart",
                           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"],
        )
        writer.send(None)
        for frame in frames:
            writer.send(frame)
        writer.close()
    return Path(path)


def write_gif(path: Path, frames: np.ndarray, fps: float) -> Path:
    """Looping GIF. GIF stores delays in 1/100 s, so 12 fps plays at 1/0.08 = 12.5 fps."""
    from PIL import Image

    images = [Image.fromarray(f) for f in np.asarray(frames, dtype=np.uint8)]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 / fps), loop=0, optimize=False)
    return Path(path)


def write_png_sequence(folder: Path, frames: np.ndarray, record: dict[str, Any] | None = None) -> Path:
    """One PNG per frame, ``0000.png`` ...; the folder appears whole (renamed into place)."""
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for i, frame in enumerate(frames):
            write_png(tmp / f"{i:04d}.png", frame, record if i == 0 else None)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_json(path: Path, data: dict[str, Any]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return Path(path)
