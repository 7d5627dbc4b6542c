"""Atomic, verified writers for stills, clips and sidecars.

Every file is written to a temporary name in the same folder (``.<name>.tmp-XXXXXXXX<suffix>``),
*read back and checked*, and only then renamed into place: a killed render, a full disk, a
file-size limit or an encoder that dies never leaves a broken file at a final name. What is
checked (``verify_file``): a PNG decodes at the expected size; an MP4 has its ``moov`` atom,
boxes that add up to the file size and decodes to the expected number of frames; a GIF has
the expected frame count; a JSON file parses; an ``.npz`` archive opens with intact members.

Clips are written through sinks (``open_sink``) that take one frame at a time, so a clip is
streamed to the encoder and never held whole in memory (GIF excepted: Pillow writes a GIF
from all its frames at once).

A file that exists but was not written by cinekit (no sidecar record, no PNG text record,
no manifest entry) is never overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from cinekit.errors import EngineError, UserError

METADATA_KEY = "cinekit"
TEMP_MARK = ".tmp-"  # every temporary name holds it: one folder walk finds what a killed run left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_error(path: Path, exc: OSError) -> EngineError:
    """An OS error while writing (full disk, file-size limit, permissions) as an engine error."""
    why = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file-size limit was reached",
           errno.EDQUOT: "the disk quota is exceeded"}.get(exc.errno or 0, exc.strerror or str(exc))
    return EngineError(f"cannot write {Path(path).name}: {why} ({exc})")


def temp_path(path: Path, suffix: str | None = None, folder: bool = False) -> Path:
    """A fresh temporary name next to ``path`` (created empty: a file, or a folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}{TEMP_MARK}"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix if suffix is not None else path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path, verify: Callable[[Path], None] | None = None) -> Path:
    """Verify ``tmp``, flush it to disk and rename it over ``path`` (the only way a file gets a final name)."""
    (verify or verifier_for(path))(tmp)
    with open(tmp, "rb") as fh:  # the bytes reach the disk before the rename
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
    os.replace(tmp, path)
    return Path(path)


def discard(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path, suffix: str | None = None,
                verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; verify it and rename it over ``path`` only on success.

    ``verify`` defaults to the check for ``path``'s suffix (``verifier_for``). An OS error
    (full disk, file-size limit) becomes an ``EngineError`` naming the file.
    """
    path = Path(path)
    try:
        tmp = temp_path(path, suffix)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        yield tmp
        commit(tmp, path, verify)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        discard(tmp)


# --------------------------------------------------------------------------- verification
def _bad(path: Path, what: str) -> EngineError:
    return EngineError(f"wrote a broken file for {Path(path).name.split(TEMP_MARK)[0].lstrip('.')}: {what}")


def verify_png(path: Path, size: tuple[int, int] | None = None) -> None:
    """A PNG that decodes completely (at ``size`` = (width, height) when given)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise _bad(path, f"not a PNG ({im.format})")
            im.load()  # decodes every row: a truncated file fails here
            got = im.size
    except EngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged data
        raise _bad(path, f"PNG does not decode ({exc})") from None
    if size is not None and tuple(got) != tuple(size):
        raise _bad(path, f"PNG is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")


def verify_json(path: Path) -> None:
    try:
        json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise _bad(path, f"JSON does not parse ({exc})") from None


def verify_npz(path: Path) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise _bad(path, f"archive does not open ({exc})") from None
    if bad is not None:
        raise _bad(path, f"archive member {bad} is damaged")


def mp4_boxes(path: Path) -> list[str]:
    """Top-level MP4 box types; raises when a box runs past the end of the file (truncation)."""
    size = Path(path).stat().st_size
    boxes, pos = [], 0
    with open(path, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                raise _bad(path, f"MP4 ends inside a box header at byte {pos}")
            length = int.from_bytes(head[:4], "big")
            kind = head[4:8].decode("latin-1")
            if length == 1:
                if len(head) < 16:
                    raise _bad(path, f"MP4 ends inside a box header at byte {pos}")
                length = int.from_bytes(head[8:16], "big")
            elif length == 0:  # "to the end of the file"
                length = size - pos
            if length < 8 or pos + length > size:
                raise _bad(path, f"MP4 box {kind!r} at byte {pos} runs past the end of the file (truncated)")
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
        raise _bad(path, f"video does not decode: {proc.stderr.strip()[-500:] or f'exit {proc.returncode}'}")
    frames = [line.split("=", 1)[1] for line in proc.stdout.splitlines() if line.startswith("frame=")]
    return int(frames[-1]) if frames else 0


def verify_mp4(path: Path, frames: int | None = None) -> None:
    """The container is whole (``moov`` present, boxes add up) and decodes to ``frames`` frames."""
    boxes = mp4_boxes(path)
    for needed in ("ftyp", "moov", "mdat"):
        if needed not in boxes:
            raise _bad(path, f"MP4 has no {needed!r} atom (boxes: {', '.join(boxes) or 'none'})")
    if frames is not None:
        got = decoded_frames(path)
        if got != frames:
            raise _bad(path, f"MP4 decodes to {got} frame(s), expected {frames}")


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
        raise _bad(path, f"GIF does not decode ({exc})") from None
    if frames is not None and shown != frames:
        raise _bad(path, f"GIF shows {shown} frame(s), expected {frames}")
    if size is not None and tuple(got) != tuple(size):
        raise _bad(path, f"GIF is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")


def verifier_for(path: Path) -> Callable[[Path], None]:
    """The default check for a file by its suffix (no check for unknown kinds)."""
    return {".png": verify_png, ".json": verify_json, ".npz": verify_npz, ".mp4": verify_mp4,
            ".gif": verify_gif}.get(Path(path).suffix.lower(), lambda _p: None)


# --------------------------------------------------------------------------- ownership
def sidecar_path(output: Path) -> Path:
    return Path(output).with_suffix(".json")


def written_by_cinekit(path: Path, owned: Iterable[str] = ()) -> bool:
    """True when ``path`` carries cinekit's record: a PNG text chunk, a sidecar naming it, or
    ``owned`` (names another record of this folder, e.g. the manifest, gives as cinekit's).

    ``owned`` is what lets a render repair an output whose sidecar is damaged: the file is still
    known to be cinekit's even though its own record no longer parses.
    """
    path = Path(path)
    if path.name in set(owned):
        return True
    if path.suffix.lower() == ".png" and path.is_file():
        try:
            from PIL import Image

            with Image.open(path) as im:
                if METADATA_KEY in getattr(im, "text", {}):
                    return True
        except Exception:  # noqa: BLE001 - an unreadable file is simply "not ours" by this test
            pass
    for candidate in (sidecar_path(path), path.parent / (path.name.split(".")[0] + ".json")):
        if candidate.is_file():
            try:
                record = json.loads(candidate.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and METADATA_KEY in record and (
                    candidate == path or path.name in record.get("files", {})):
                return True  # the sidecar itself, or a file it lists
    return False


def ensure_writable(path: Path, force: bool = False, owned: Iterable[str] = ()) -> None:
    path = Path(path)
    if path.exists() and not force and not written_by_cinekit(path, owned):
        raise UserError(f"{path} exists and was not written by cinekit; refusing to overwrite it",
                        hint="move it away, or choose another output folder with --out")


# --------------------------------------------------------------------------- sinks (frame by frame)
class PngSink:
    """A still: exactly one frame, PNG with the job record in a text chunk."""

    def __init__(self, path: Path, record: dict[str, Any] | None = None):
        self.path, self.record, self.frame = Path(path), record, None

    def add(self, frame: np.ndarray) -> None:
        if self.frame is not None:
            raise EngineError(f"{self.path.name}: a still takes one frame")
        self.frame = frame

    def finish(self) -> None:
        if self.frame is None:
            raise EngineError(f"{self.path.name}: no frame to write")
        write_png(self.path, self.frame, self.record)

    def abort(self) -> None:
        self.frame = None


class Mp4Sink:
    """H.264 MP4: frames go straight to the encoder; checked before the rename."""

    def __init__(self, path: Path, fps: float):
        from cinekit.render.encode import Mp4Encoder

        self.path = Path(path)
        if self.path.parent.exists() is False:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.tmp = temp_path(self.path)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self.encoder = Mp4Encoder(self.tmp, fps, label=self.path.name)
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        self.encoder.send(frame)
        self.count += 1

    def finish(self) -> None:
        try:
            self.encoder.close()
            commit(self.tmp, self.path, lambda p: verify_mp4(p, self.count))
        except OSError as exc:
            raise write_error(self.path, exc) from None
        finally:
            discard(self.tmp)

    def abort(self) -> None:
        self.encoder.kill()
        discard(self.tmp)


class GifSink:
    """Looping GIF. Pillow needs every frame at once, so a GIF (a preview format) is held in memory."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self.frames = Path(path), fps, []

    def add(self, frame: np.ndarray) -> None:
        from PIL import Image

        self.frames.append(Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)))

    def finish(self) -> None:
        if not self.frames:
            raise EngineError(f"{self.path.name}: no frame to write")
        n, size, delay = len(self.frames), self.frames[0].size, round(1000 / self.fps)
        # GIF stores delays in 1/100 s, so 12 fps plays at 1/0.08 = 12.5 fps.
        with atomic_path(self.path, verify=lambda p: verify_gif(p, n, size, delay)) as tmp:
            self.frames[0].save(tmp, format="GIF", save_all=True, append_images=self.frames[1:],
                                duration=delay, loop=0, optimize=False)
        self.frames = []

    def abort(self) -> None:
        self.frames = []


class PngSequenceSink:
    """One PNG per frame, ``0000.png`` ...; the folder appears whole (renamed into place)."""

    def __init__(self, folder: Path, record: dict[str, Any] | None = None):
        self.folder, self.record, self.count = Path(folder), record, 0
        try:
            self.tmp = temp_path(self.folder, folder=True)
        except OSError as exc:
            raise write_error(self.folder, exc) from None

    def add(self, frame: np.ndarray) -> None:
        write_png(self.tmp / f"{self.count:04d}.png", frame, self.record if self.count == 0 else None)
        self.count += 1

    def finish(self) -> None:
        try:
            names = sorted(os.listdir(self.tmp))
            if names != [f"{i:04d}.png" for i in range(self.count)]:
                raise _bad(self.folder, f"frame folder holds {len(names)} file(s), expected {self.count}")
            if self.folder.exists():
                shutil.rmtree(self.folder)
            os.replace(self.tmp, self.folder)
        except OSError as exc:
            raise write_error(self.folder, exc) from None
        finally:
            discard(self.tmp)

    def abort(self) -> None:
        discard(self.tmp)


def open_sink(path: Path, kind: str, fmt: str, fps: float, record: dict[str, Any] | None = None):
    """The sink that writes one output of a job (``kind`` still|clip, ``fmt`` mp4|gif|png)."""
    if kind == "still":
        return PngSink(path, record)
    if fmt == "mp4":
        return Mp4Sink(path, fps)
    if fmt == "gif":
        return GifSink(path, fps)
    return PngSequenceSink(path, record)


def _write_all(sink, frames: Iterable[np.ndarray]) -> None:
    try:
        for frame in frames:
            sink.add(frame)
        sink.finish()
    except BaseException:
        sink.abort()
        raise


# --------------------------------------------------------------------------- whole-array writers
def write_png(path: Path, image: np.ndarray, record: dict[str, Any] | None = None) -> Path:
    """``image`` (H, W, 3) uint8 -> PNG with the job record in a text chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    image = np.ascontiguousarray(image, dtype=np.uint8)
    info = PngInfo()
    if record is not None:
        info.add_text(METADATA_KEY, json.dumps(record, sort_keys=True))
    size = (image.shape[1], image.shape[0])
    with atomic_path(path, verify=lambda p: verify_png(p, size)) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=info)
    return Path(path)


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Frames (H, W, 3) uint8 -> H.264 yuv420p MP4 that browsers play, exactly as many frames.

    Bit-exact flags keep the bytes reproducible for the same frames on the same machine.
    """
    _write_all(Mp4Sink(path, fps), frames)
    return Path(path)


def write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Looping GIF. GIF stores delays in 1/100 s, so 12 fps plays at 1/0.08 = 12.5 fps."""
    _write_all(GifSink(path, fps), frames)
    return Path(path)


def write_png_sequence(folder: Path, frames: Iterable[np.ndarray], record: dict[str, Any] | None = None) -> Path:
    """One PNG per frame, ``0000.png`` ...; the folder appears whole (renamed into place)."""
    _write_all(PngSequenceSink(folder, record), frames)
    return Path(folder)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return Path(path)
