"""A contact sheet of the puppet on real third-party art: ``python -m cinekit.puppet.contact_sheet``.

Rows: the AnimatedDrawings characters and a real reference (``real-refs/anyone-2.png``, made
usable by cinekit itself: its automatic mask, ``identity.masks``, and a rig given below); columns: frames of a wave
(``wave_hello.bvh``), a dab (keyframed from ``stand``), and jumping jacks
(``jumping_jacks.bvh``). Each tile draws the pose track's skeleton thinly over the render,
so a limb off its track shows. Writes ``docs/img/puppet_real_art.png`` (or ``--out``).
Needs the shared test data (``cinekit.testing.data.shared_data_dir``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

TILE = 256
HERO_RIG = {
    "nose": [290, 150], "neck": [290, 210],
    "right_shoulder": [215, 228], "right_elbow": [196, 318], "right_wrist": [205, 390],
    "left_shoulder": [365, 228], "left_elbow": [385, 318], "left_wrist": [378, 395],
    "right_hip": [257, 452], "right_knee": [255, 592], "right_ankle": [252, 742],
    "left_hip": [325, 452], "left_knee": [330, 592], "left_ankle": [334, 742],
}


def dab_track(frames: int) -> np.ndarray:
    """``(frames, 18, 2)`` body space: from standing into a dab (one arm up and out, the
    other folded across the face, head ducked into the elbow) and held."""
    from cinekit.pose.angles import REST_POSE, bone_angles, bone_lengths, from_angles
    from cinekit.pose.skeleton import BONES, INDEX

    stand = np.array(REST_POSE)
    ang = bone_angles(stand)
    k = {b: i for i, b in enumerate(BONES)}
    j = INDEX
    dab = ang.copy()
    up_left = np.radians(-35.0)                      # the character's left arm: up and out (image right)
    dab[k[(j["left_shoulder"], j["left_elbow"])]] = up_left
    dab[k[(j["left_elbow"], j["left_wrist"])]] = up_left
    dab[k[(j["right_shoulder"], j["right_elbow"])]] = np.radians(-20.0)      # across, towards the face
    dab[k[(j["right_elbow"], j["right_wrist"])]] = np.radians(-150.0)
    dab[k[(j["neck"], j["nose"])]] = np.radians(-60.0)                        # head ducked to the side
    lengths = bone_lengths(stand)
    out = []
    for f in range(frames):
        t = min(1.0, f / max(1, frames // 2))
        t = t * t * (3 - 2 * t)
        a = ang + t * np.angle(np.exp(1j * (dab - ang)))
        out.append(from_angles(stand[j["neck"]], a, lengths))
    return np.array(out)


def bvh_track(name: str, frames: int) -> np.ndarray:
    from cinekit.pose.bvh import load_bvh
    from cinekit.pose.motion import resample, to_body_space
    from cinekit.testing.data import shared_data_dir

    motion = load_bvh(shared_data_dir() / "animated-drawings" / "bvh" / f"{name}.bvh", view="front")
    body = to_body_space(resample(motion, 12.0, loop=True, frames=frames))
    body[..., 0] -= (body[:, 1, 0] - body[0, 1, 0])[:, None]   # stay in the tile
    return body


def characters(tmp: Path) -> dict:
    from cinekit.spec.models import CharacterSpec
    from cinekit.testing.data import shared_data_dir

    data = shared_data_dir()
    out = {}
    for c in ("char1", "char2", "char3", "char4"):
        d = data / "animated-drawings" / "characters" / c
        spec = CharacterSpec.model_validate({"name": c, "references": [{"image": str(d / "texture.png"), "mask": str(d / "mask.png")}],
                                             "rig": {"from": str(d / "char_cfg.yaml")}})
        out[c] = (spec, d / "character.yaml")
    ref = data / "real-refs" / "anyone-2.png"   # no mask: cinekit cuts it from its backdrop
    spec = CharacterSpec.model_validate({"name": "anyone-2", "references": [{"image": str(ref)}],
                                         "rig": {"joints": HERO_RIG}})
    out["anyone-2"] = (spec, tmp / "anyone-2.yaml")
    return out


def render_sheet(tmp: Path) -> np.ndarray:
    from cinekit.engines.puppet import PuppetEngine
    from cinekit.identity.core import IdentityStore
    from cinekit.job import Job, JobCharacter
    from cinekit.pose.camera import place
    from cinekit.pose.draw import draw_control_map
    from cinekit.pose.retarget import lengths_from_rig, retarget

    chars = characters(tmp)
    runtime = SimpleNamespace(identities=IdentityStore(chars), project=None)
    engine = PuppetEngine(runtime)
    # Frames that show each move: the wave's hand at its highest and a beat later, the
    # jumping jacks' arms up and down, the dab once it is reached.
    wave, jacks = bvh_track("wave_hello", 120), bvh_track("jumping_jacks", 48)
    wrist_up = lambda b: b[:, 4, 1] - b[:, 1, 1]  # noqa: E731
    top = int(np.argmin(wrist_up(wave)))
    clips = {"wave": wave[[top, min(len(wave) - 1, top + 3)]], "dab": dab_track(24)[[20]],
             "jumping jacks": jacks[[int(np.argmin(wrist_up(jacks))), int(np.argmax(wrist_up(jacks)))]]}
    face = [0, 14, 15, 16, 17]
    rows = []
    for name in chars:
        rig = runtime.identities.get(name).rig
        tiles = []
        for body in clips.values():
            track = retarget(body, lengths_from_rig(rig)[0], rest=rig)
            pose = place([track], [0.5], None, "full", TILE, TILE)
            job = Job(shot_id="sheet", shotlist="sheet", kind="clip", engine="puppet", width=TILE, height=TILE,
                      fps=12.0, frames=len(body), seed=0, steps=1, guidance=0.0, prompt="", negative="",
                      characters=(JobCharacter(name=name, spec_path="x", position=0.5),), pose=pose,
                      output="sheet/sheet", background=(244, 242, 236), camera="full")
            frames = engine.render(job).frames
            for f in range(len(body)):
                tile = frames[f].copy()
                body_only = pose[f].copy()
                if not np.isfinite(rig[0]).all():     # a rig without a face: its face joints are guesses
                    body_only[:, face] = np.nan
                skel = draw_control_map(body_only, TILE, TILE, stickwidth=1)   # the track, thin, on top
                on = skel.max(axis=-1) > 0
                tile[on] = (0.45 * tile[on] + 0.55 * skel[on]).astype(np.uint8)
                tiles.append(tile)
        rows.append(np.hstack(tiles))
    sheet = np.vstack(rows)
    head = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    x = 0
    for label, body in clips.items():
        cv2.putText(head, label, (x + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1, cv2.LINE_AA)
        x += TILE * len(body)
    return np.vstack([head, sheet])


def main(argv: list[str] | None = None) -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img/puppet_real_art.png")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sheet = render_sheet(Path(tmp))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet[..., ::-1])
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
