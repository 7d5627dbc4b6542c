"""A tiny rendered episode for the studio exports: a still, a clip, a clip at another rate, a line of audio."""

from __future__ import annotations

import math
import os
import struct
import wave
from pathlib import Path

from typer.testing import CliRunner

from cinekit.cli import app
from tests.project_factory import make_project

SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        camera: full
        action: Ann waves at the camera.
        dialogue: "ANN: Hello there!"
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 1.5
        prompt: "{ann} and {bob}"
        camera: wide
        audio: ../sound/line.wav
        action: Ann walks towards Bob.
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand, mirror: true}
      - id: s030
        kind: clip
        duration: 1.0
        fps: 12
        prompt: "{bob} alone"
        camera: medium
        dialogue: "BOB: Bye."
        characters: [{name: bob, pose: {keyframes: [{at: 0, pose: stand}, {at: 1, pose: wave}]}}]
    """

HOLD = 2.0                      # the animatic's default still hold
SECONDS = HOLD + 1.5 + 1.0      # the episode's length


def write_tone(path: Path, seconds: float = 3.0, freq: float = 440.0, rate: int = 16000) -> Path:
    """A mono 16-bit sine WAV (a line of dialogue stand-in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    data = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def rendered_episode(root: Path) -> Path:
    """Make the project under ``root`` and render it with previz; return the project folder."""
    make_project(root, SHOTS)
    write_tone(root / "sound" / "line.wav")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(app, ["render", "--ci"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return root
