"""Build small projects on disk for tests: one YAML string per file, simple RGBA art."""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image

# A stick-figure rig on a 200x400 canvas (COCO-18 names; "right" = the character's right).
RIG = {
    "nose": [100, 50], "neck": [100, 90], "right_eye": [92, 44], "left_eye": [108, 44],
    "right_ear": [84, 50], "left_ear": [116, 50],
    "right_shoulder": [70, 100], "right_elbow": [55, 160], "right_wrist": [45, 215],
    "left_shoulder": [130, 100], "left_elbow": [145, 160], "left_wrist": [155, 215],
    "right_hip": [82, 220], "right_knee": [78, 300], "right_ankle": [75, 375],
    "left_hip": [118, 220], "left_knee": [122, 300], "left_ankle": [125, 375],
}


def draw_figure(path: Path, colour=(200, 60, 60)) -> None:
    """A filled figure along RIG on a transparent 200x400 canvas."""
    from PIL import ImageDraw

    im = Image.new("RGBA", (200, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    j = {k: tuple(v) for k, v in RIG.items()}
    for a, b in [("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
                 ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
                 ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("left_hip", "left_knee"),
                 ("left_knee", "left_ankle")]:
        d.line([j[a], j[b]], fill=colour + (255,), width=18)
    d.polygon([j["right_shoulder"], j["left_shoulder"], j["left_hip"], j["right_hip"]], fill=(60, 60, 160, 255))
    d.ellipse([70, 15, 130, 85], fill=(250, 220, 190, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def character_yaml(name: str, image: str = "refs/{name}.png") -> str:
    joints = ", ".join(f"{k}: {v}" for k, v in RIG.items())
    return textwrap.dedent(f"""\
        name: {name}
        description: "{name}, test character"
        references:
          - {{image: {image.format(name=name)}, view: front}}
        rig:
          joints: {{{joints}}}
        """)


CONFIG = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [256, 192], fps: 8}\n"


def make_project(root: Path, shots: str, characters=("ann", "bob"), config: str = CONFIG,
                 extra: dict[str, str] | None = None) -> Path:
    """Write cinekit.yaml, characters/<name>.yaml (+ art) and shots/ep.yaml; return the root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cinekit.yaml").write_text(config)
    for i, name in enumerate(characters):
        draw_figure(root / "characters" / "refs" / f"{name}.png", colour=(200 - 60 * i, 60 + 60 * i, 60))
        (root / "characters" / f"{name}.yaml").write_text(character_yaml(name))
    (root / "shots").mkdir(exist_ok=True)
    (root / "shots" / "ep.yaml").write_text(textwrap.dedent(shots))
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


def frame_count(path: Path) -> tuple[int, float, tuple[int, int]]:
    """(frames, fps, (width, height)) of a video, decoded frame by frame with imageio-ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    n = sum(1 for _ in reader)
    return n, float(meta["fps"]), tuple(meta["size"])


def render_ci(root: Path, *args: str):
    """``cinekit render --ci ARGS`` run in ``root`` through the CLI (a typer CliRunner result)."""
    import os

    from typer.testing import CliRunner

    from cinekit.cli import app

    cwd = os.getcwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, ["render", "--ci", *args])
    finally:
        os.chdir(cwd)
