"""A small project whose character has expression art (tests of cinekit.acting)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.project_factory import character_yaml, make_project

FACE = (84, 32, 116, 64)    # the face region on the 200x400 test reference (head ellipse 70..130 x 15..85)


def smile_art(path: Path) -> np.ndarray:
    """A 40x32 face crop unlike the plain test face (green, a black smile, a red dot on the
    viewer's left: a mirrored face shows it on the right); its RGBA."""
    im = Image.new("RGBA", (40, 32), (30, 200, 90, 255))
    d = ImageDraw.Draw(im)
    d.arc([5, 4, 35, 27], 20, 160, fill=(0, 0, 0, 255), width=3)
    d.ellipse([4, 4, 12, 12], fill=(220, 30, 30, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return np.asarray(im)


def write_wav(path: Path, pieces: list[tuple[float, float]], rate: int = 16000) -> None:
    """A mono 16-bit WAV of ``(seconds, amplitude)`` pieces of a 220 Hz tone (0: silence)."""
    chunks = []
    for seconds, amp in pieces:
        t = np.arange(int(seconds * rate)) / rate
        chunks.append(amp * np.sin(2 * np.pi * 220 * t))
    data = (np.concatenate(chunks) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def acting_project(root: Path, shots: str, face: bool = True) -> Path:
    """Project with character ``ann`` (smile art, face region given when ``face``) and ``bob``."""
    make_project(root, shots, characters=("ann", "bob"))
    smile_art(root / "characters" / "refs" / "ann_smile.png")
    entry = f"{{image: refs/ann_smile.png, face: {list(FACE)}}}" if face else "refs/ann_smile.png"
    (root / "characters" / "ann.yaml").write_text(character_yaml("ann") + f"expressions: {{smile: {entry}}}\n")
    return root
