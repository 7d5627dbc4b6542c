"""Atomic writers: a fault inside the writer (the encoder dies half-way, the rename fails) leaves
nothing at the final path (or the previous file there untouched, byte for byte) and no
temporary file behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cinekit.render import writers

FRAMES = np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), dtype=np.uint8)


class EncoderDied(RuntimeError):
    pass


def _dying_pil_save(monkeypatch):
    """PIL writes some real bytes to the file it was given, then fails (disk full, killed encoder)."""
    from PIL import Image

    real = Image.Image.save

    def save(self, fp, *args, **kwargs):
        real(self, fp, *args, **kwargs)
        with open(fp, "r+b") as fh:                      # keep only the first half: a torn file
            fh.truncate(max(1, Path(fp).stat().st_size // 2))
        raise EncoderDied("encoder died half-way")

    monkeypatch.setattr(Image.Image, "save", save)


def _dying_ffmpeg(monkeypatch):
    """ffmpeg encodes two frames into the file it was given, then the encoder dies."""
    from cinekit.render import encode

    real = encode.Mp4Encoder.send

    def send(self, frame):
        if self.frames == 2:
            self.proc.stdin.close()                    # what reached the file stays there
            self.proc.wait()
            raise EncoderDied("encoder died half-way")
        return real(self, frame)

    monkeypatch.setattr(encode.Mp4Encoder, "send", send)


def _dying_text(monkeypatch):
    real = Path.write_text

    def write_text(self, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise EncoderDied("killed half-way")

    monkeypatch.setattr(Path, "write_text", write_text)


CASES = {
    "png": ("out.png", lambda p: writers.write_png(p, FRAMES[0], {"a": 1}), _dying_pil_save),
    "gif": ("out.gif", lambda p: writers.write_gif(p, FRAMES, 8.0), _dying_pil_save),
    "mp4": ("out.mp4", lambda p: writers.write_mp4(p, FRAMES, 8.0), _dying_ffmpeg),
    "json": ("out.json", lambda p: writers.write_json(p, {"cinekit": "x", "files": {}}), _dying_text),
    "png sequence": ("out", lambda p: writers.write_png_sequence(p, FRAMES, {"a": 1}), _dying_pil_save),
}


def _leftovers(folder: Path, final: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != final)


@pytest.mark.parametrize("case", list(CASES))
def test_a_writer_that_dies_half_way_leaves_no_file_at_the_final_path(tmp_path, monkeypatch, case):
    name, write, fault = CASES[case]
    final = tmp_path / name
    with monkeypatch.context() as m:
        fault(m)
        with pytest.raises(EncoderDied):
            write(final)
    assert not final.exists(), f"{case}: a torn file was left at the final path"
    assert _leftovers(tmp_path, final) == []
    write(final)                                           # without the fault: the whole file
    assert final.exists()


@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_rewrite_keeps_the_previous_file_intact(tmp_path, monkeypatch, case):
    name, write, fault = CASES[case]
    final = tmp_path / name
    write(final)
    before = {p.name: p.read_bytes() for p in ([final] if final.is_file() else sorted(final.iterdir()))}
    with monkeypatch.context() as m:
        fault(m)
        with pytest.raises(EncoderDied):
            write(final)
    after = {p.name: p.read_bytes() for p in ([final] if final.is_file() else sorted(final.iterdir()))}
    assert after == before
    assert _leftovers(tmp_path, final) == []


def test_a_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    import os

    def replace(src, dst):
        raise OSError("rename failed")

    from cinekit.errors import EngineError

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(EngineError, match="rename failed"):  # an OS error while writing is the runtime's
        writers.write_png(tmp_path / "x.png", FRAMES[0])
    assert list(tmp_path.iterdir()) == []
