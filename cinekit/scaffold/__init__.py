"""`cinekit init`: a new project that renders as is (two drawn characters, a starter episode)."""

from __future__ import annotations

from pathlib import Path

from cinekit.errors import UserError

CONFIG = """\
# cinekit project settings (see the README for every key)
output: renders
engines: {still: puppet, clip: puppet}      # default engine per kind: previz | puppet | diffusers
defaults: {size: [768, 512], fps: 12, seed: 0, steps: 25, guidance: 7.0}
models: {}                                  # named model sets for the diffusers engine
"""

EPISODE = """\
# A starter episode: edit the prompts and poses, then `cinekit render`.
defaults: {fps: 12, size: [768, 512], background: "#2b3a55"}
shots:
  - id: s010
    kind: still
    prompt: "{mika} on the station platform at dusk"
    camera: full
    characters:
      - {name: mika, position: center, pose: stand}
  - id: s020
    kind: clip
    duration: 2.0
    prompt: "{mika} waves at {ren}"
    camera: wide
    dialogue: [{character: mika, at: 0.6, end: 1.6, line: "Ren! Over here!"}]
    characters:
      - {name: mika, position: left, pose: {keyframes: [{at: 0, pose: stand}, {at: 0.6, pose: wave, ease: ease_out, expression: smile}]}}
      - {name: ren, position: right, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 0.5, pose: walk_b}, {at: 1.0, pose: walk_c}, {at: 1.5, pose: walk_d}]}, mirror: true}
  - id: s030
    kind: still
    prompt: "close-up of {ren}, thinking"
    camera: close_up
    characters:
      - {name: ren, position: center, pose: think}
"""


# The example characters' art and YAML, drawn by cinekit/scaffold/art.py and shipped as files
# (drawing them takes seconds; copying, milliseconds). Regenerate: python -m cinekit.scaffold.art --write
CHARACTERS = Path(__file__).resolve().parent / "characters"


def scaffold(directory: Path) -> Path:
    """Create ``directory`` with cinekit.yaml, characters/ (art + rig) and shots/episode01.yaml."""
    import shutil

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise UserError(f"{directory} is not empty", hint="choose a new folder name")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cinekit.yaml").write_text(CONFIG)
    if not (CHARACTERS / "refs").is_dir():
        raise UserError(f"the example art is missing from the installed package ({CHARACTERS.name}/)",
                        hint="reinstall cinekit, or draw it: python -m cinekit.scaffold.art --write")
    shutil.copytree(CHARACTERS, directory / "characters")
    (directory / "shots").mkdir()
    (directory / "shots" / "episode01.yaml").write_text(EPISODE)
    (directory / ".gitignore").write_text("renders/\n.cinekit-cache/\n")
    return directory
