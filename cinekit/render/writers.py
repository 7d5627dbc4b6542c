"""Atomic, verified writers for stills, clips and sidecars.

Every file is written to a temporary name in the same folder (``.<name>.tmp-XXXXXXXX<suffix>``),
*read back and checked*, and only then renamed into place: a killed render, a full disk, a
file-size limit or an encoder that dies never leaves a broken file at a final name. What is
checked (``cinekit.render.verify``): a PNG decodes at the expected size; an MP4 has its ``moov`` atom,
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
from cinekit.render.verify import (
    TEMP_MARK,
    bad_file,
    verifier_for,
    verify_gif,
    verify_mp4,
    verify_png,
)

METADATA_KEY = "cinekit"
PARAMETERS_KEY = "parameters"  # AUTOMATIC1111's text chunk (cinekit.render.interop.a1111_parameters)


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

    def __init__(self, path: Path, record: dict[str, Any] | None = None, parameters: str | None = None):
        self.path, self.record, self.frame, self.parameters = Path(path), record, None, parameters

    def add(self, frame: np.ndarray) -> None:
        if self.frame is not None:
            raise EngineError(f"{self.path.name}: a still takes one frame")
        self.frame = frame

    def finish(self) -> None:
        if self.frame is None:
            raise EngineError(f"{self.path.name}: no frame to write")
        write_png(self.path, self.frame, self.record, self.parameters)

    def abort(self) -> None:
        self.frame = None


class Mp4Sink:
    """H.264 MP4: frames go straight to the encoder; checked before the rename."""

    def __init__(self, path: Path, fps: float):
        from cinekit.render.encode import Mp4Encoder

        self.path = Path(path)
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

    def __init__(self, folder: Path, record: dict[str, Any] | None = None, parameters: str | None = None):
        self.folder, self.record, self.count, self.parameters = Path(folder), record, 0, parameters
        try:
            self.tmp = temp_path(self.folder, folder=True)
        except OSError as exc:
            raise write_error(self.folder, exc) from None

    def add(self, frame: np.ndarray) -> None:
        first = self.count == 0
        write_png(self.tmp / f"{self.count:04d}.png", frame, self.record if first else None,
                  self.parameters if first else None)
        self.count += 1

    def finish(self) -> None:
        try:
            names = sorted(os.listdir(self.tmp))
            if names != [f"{i:04d}.png" for i in range(self.count)]:
                raise bad_file(self.folder, f"frame folder holds {len(names)} file(s), expected {self.count}")
            if self.folder.exists():
                shutil.rmtree(self.folder)
            os.replace(self.tmp, self.folder)
        except OSError as exc:
            raise write_error(self.folder, exc) from None
        finally:
            discard(self.tmp)

    def abort(self) -> None:
        discard(self.tmp)


def open_sink(path: Path, kind: str, fmt: str, fps: float, record: dict[str, Any] | None = None,
              parameters: str | None = None):
    """The sink that writes one output of a job (``kind`` still|clip, ``fmt`` mp4|gif|png);
    ``parameters``: the A1111 text its PNGs carry (main outputs only)."""
    if kind == "still":
        return PngSink(path, record, parameters)
    if fmt == "mp4":
        return Mp4Sink(path, fps)
    if fmt == "gif":
        return GifSink(path, fps)
    return PngSequenceSink(path, record, parameters)


def _write_all(sink, frames: Iterable[np.ndarray]) -> None:
    try:
        for frame in frames:
            sink.add(frame)
        sink.finish()
    except BaseException:
        sink.abort()
        raise


# --------------------------------------------------------------------------- whole-array writers
def write_png(path: Path, image: np.ndarray, record: dict[str, Any] | None = None,
              parameters: str | None = None) -> Path:
    """``image`` (H, W, 3) uint8 -> PNG with the job record in a text chunk (and, given
    ``parameters``, A1111's ``parameters`` chunk, which other tools read)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    image = np.ascontiguousarray(image, dtype=np.uint8)
    info = PngInfo()
    if record is not None:
        info.add_text(METADATA_KEY, json.dumps(record, sort_keys=True))
    if parameters is not None:
        info.add_text(PARAMETERS_KEY, parameters)
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
