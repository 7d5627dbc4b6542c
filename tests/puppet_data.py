"""Real test data for the puppet tests: AnimatedDrawings characters driven by BVH clips."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from cinekit.identity.core import IdentityStore
from cinekit.job import Job, JobCharacter
from cinekit.spec.models import CharacterSpec
from cinekit.testing.data import shared_data_dir

DATA = shared_data_dir() / "animated-drawings"
CHARS = ("char1", "char2", "char3", "char4")
BVHS = ("jumping_jacks", "wave_hello", "jumping")


def character_spec(name: str, rig: bool = True) -> CharacterSpec:
    data = {"name": name, "references": [{"image": "texture.png", "mask": "mask.png"}]}
    if rig:
        data["rig"] = {"from": "char_cfg.yaml"}
    return CharacterSpec.model_validate(data)


def make_runtime(extra: dict | None = None) -> SimpleNamespace:
    """A stand-in Runtime: only ``identities`` is used by the puppet engine."""
    chars = {c: (character_spec(c), DATA / "characters" / c / "character.yaml") for c in CHARS}
    chars.update(extra or {})
    return SimpleNamespace(identities=IdentityStore(chars), project=None)


def bvh_body(rig: np.ndarray, bvh: str, n: int, view: str = "front") -> np.ndarray:
    """``n`` evenly spaced frames of a BVH, in body space, retargeted to ``rig`` ``(n, 18, 2)``.

    ``view="front"``: these characters only have front art, which cannot show a profile
    (``jumping`` would be projected from the side by ``view="auto"``)."""
    from cinekit.pose.bvh import load_bvh
    from cinekit.pose.motion import to_body_space
    from cinekit.pose.retarget import lengths_from_rig, retarget

    motion = load_bvh(DATA / "bvh" / f"{bvh}.bvh", view=view)
    body = to_body_space(motion.poses)
    idx = np.linspace(0, len(body) - 1, n).round().astype(int)
    body = body[idx].copy()
    # Keep the figure in frame: drop horizontal root travel (the jump goes forward).
    body[..., 0] -= (body[:, 1, 0] - body[0, 1, 0])[:, None]
    return retarget(body, lengths_from_rig(rig)[0], rest=rig)


def make_job(characters: list[JobCharacter], pose: np.ndarray, width: int, height: int,
             background=(235, 235, 240), kind: str = "clip") -> Job:
    return Job(
        shot_id="t", shotlist="t.yaml", kind=kind, engine="puppet", width=width, height=height,
        fps=12.0, frames=pose.shape[0], seed=0, steps=1, guidance=0.0, prompt="", negative="",
        characters=tuple(characters), pose=pose, output="t/t", background=background, camera="full",
    )


def bvh_job(runtime, char: str, bvh: str, n: int, width: int = 768, height: int = 512,
            mirror: bool = False, camera: str = "full") -> Job:
    """A one-character clip of ``n`` frames of ``bvh`` as the planner would build it."""
    from cinekit.pose.camera import mirror as mirror_pose
    from cinekit.pose.camera import place

    body = bvh_body(runtime.identities.get(char).rig, bvh, n)
    if mirror:
        body = mirror_pose(body, 0.0)
    pose = place([body], [0.5], None, camera, width, height)
    ch = JobCharacter(name=char, spec_path=str(DATA / "characters" / char / "character.yaml"),
                      position=0.5, mirror=mirror)
    return make_job([ch], pose, width, height)
