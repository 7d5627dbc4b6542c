"""Drawn = track: the joints the puppet draws land on the pose track's joints.

The oracle reads the rendered frames, not the transforms: each character's art is replaced by
flat grey with a coloured disc at every rig joint (same mask, same rig), rendered through the
engine, and each disc is found again in the frame. Control maps, region masks and scores are
computed from the track, so a drawing that drifts off it breaks all of them.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from cinekit.engines.puppet import PuppetEngine
from cinekit.pose.retarget import lengths_from_rig
from cinekit.pose.skeleton import INDEX
from cinekit.puppet.deform import frame_scale
from cinekit.spec.models import CharacterSpec
from tests.puppet_data import BVHS, CHARS, DATA, bvh_job, make_runtime

JOINTS = ("neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
          "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle")
LIMBS = (("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
         ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
         ("left_hip", "left_knee"), ("left_knee", "left_ankle"))
# Saturated, pairwise far apart colours (RGB); the art around them is grey.
COLOURS = np.array([cv2.cvtColor(np.uint8([[[int(180 * k / len(JOINTS)), 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
                    for k in range(len(JOINTS))], np.int32)
N_FRAMES = 6


def marker_art(char: str, out_dir) -> str:
    """A copy of ``char``'s art: grey inside the mask, a coloured disc on every joint."""
    import yaml

    from cinekit.identity.core import ANIMATED_DRAWINGS_TO_COCO

    with Image.open(DATA / "characters" / char / "texture.png") as im:
        rgba = np.asarray(im.convert("RGBA")).copy()
    rgba[..., :3] = 128
    cfg = yaml.safe_load((DATA / "characters" / char / "char_cfg.yaml").read_text())
    locs = {ANIMATED_DRAWINGS_TO_COCO[j["name"]]: j["loc"] for j in cfg["skeleton"] if j["name"] in ANIMATED_DRAWINGS_TO_COCO}
    radius = max(5, int(round(0.012 * rgba.shape[0])))
    for k, name in enumerate(JOINTS):
        x, y = locs[name]
        cv2.circle(rgba, (int(x), int(y)), radius, (*(int(c) for c in COLOURS[k]), 255), -1)
    path = out_dir / f"{char}_markers.png"
    Image.fromarray(rgba).save(path)
    return str(path)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    out = tmp_path_factory.mktemp("markers")
    extra = {}
    for c in CHARS:
        spec = CharacterSpec.model_validate({
            "name": f"{c}_markers",
            "references": [{"image": marker_art(c, out), "mask": str(DATA / "characters" / c / "mask.png")}],
            "rig": {"from": str(DATA / "characters" / c / "char_cfg.yaml")},
        })
        extra[f"{c}_markers"] = (spec, DATA / "characters" / c / "character.yaml")
    return make_runtime(extra)


@pytest.fixture(scope="module")
def engine(runtime):
    return PuppetEngine(runtime)   # one per module: each character's puppet is built once


def find_markers(frame: np.ndarray) -> np.ndarray:
    """Centroid ``(13, 2)`` of each joint's disc in ``frame`` (NaN where none shows)."""
    out = np.full((len(JOINTS), 2), np.nan)
    f = frame.astype(np.int16)
    ys, xs = np.nonzero(f.max(axis=-1) - f.min(axis=-1) > 100)   # saturated pixels only
    dist = np.abs(f[ys, xs][:, None, :] - COLOURS[None]).max(axis=-1)   # (P, 13)
    label = np.zeros(frame.shape[:2], np.uint8)
    near = dist.min(axis=1) < 40
    label[ys[near], xs[near]] = 1 + dist[near].argmin(axis=1)
    for k in range(len(JOINTS)):
        n, _, stats, cent = cv2.connectedComponentsWithStats((label == k + 1).astype(np.uint8), connectivity=8)
        if n > 1:
            big = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
            if stats[big, cv2.CC_STAT_AREA] >= 4:
                out[k] = cent[big]
    return out


TORSO_JOINTS = [JOINTS.index(j) for j in ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip")]


def joint_errors(runtime, char: str, bvh: str, engine: PuppetEngine | None = None):
    """(distances / figure height ``(F, 13)``, limb direction errors in degrees ``(F, 8)``).

    In frames where the track turns the body into profile (shoulders narrower than half
    their drawn width), the front art is kept readable rather than squashed flat
    (``deform._SQUASH``): there the torso joints are not measured (NaN), the limbs are.
    """
    name = f"{char}_markers"
    job = bvh_job(runtime, name, bvh, N_FRAMES)
    result = (engine or PuppetEngine(runtime)).render(job)
    rig = runtime.identities.get(name).rig
    height = lengths_from_rig(rig)[1]
    idx = [INDEX[j] for j in JOINTS]
    rs, ls = INDEX["right_shoulder"], INDEX["left_shoulder"]
    dist, ang = [], []
    for f in range(job.frames):
        pose = job.pose[f, 0]
        s = frame_scale(rig, pose)
        track = pose[idx]
        drawn = find_markers(result.frames[f])
        d = np.hypot(*(drawn - track).T) / (s * height)
        if np.hypot(*(pose[ls] - pose[rs])) < 0.5 * s * np.hypot(*(rig[ls] - rig[rs])):
            d[TORSO_JOINTS] = np.nan
        dist.append(d)
        errs = []
        for a, b in LIMBS:
            ia, ib = JOINTS.index(a), JOINTS.index(b)
            vd, vt = drawn[ib] - drawn[ia], track[ib] - track[ia]
            errs.append(abs(np.degrees(np.arctan2(vd[0] * vt[1] - vd[1] * vt[0], vd @ vt))))
        ang.append(errs)
    return np.array(dist), np.array(ang)


@pytest.mark.parametrize("bvh", BVHS)
@pytest.mark.parametrize("char", CHARS)
def test_drawn_joints_land_on_the_track(runtime, engine, char, bvh):
    dist, ang = joint_errors(runtime, char, bvh, engine)
    found = np.isfinite(dist)
    # A joint may hide behind a part drawn over it (or be a profile frame's torso joint,
    # see ``joint_errors``); nearly all must show.
    assert found.mean() >= 0.85, f"only {found.mean():.0%} of the joint markers are measured"
    d, a = dist[found], ang[np.isfinite(ang)]
    print(f"{char} {bvh}: median {np.median(d):.4f} max {d.max():.4f} direction median {np.median(a):.2f} deg")
    assert np.median(d) <= 0.02, np.median(d)
    assert d.max() <= 0.05, (d.max(), np.unravel_index(np.nanargmax(dist), dist.shape))
    assert np.median(a) <= 3.0, np.median(a)


def test_the_oracle_sees_a_puppet_that_ignores_the_target_directions(runtime, engine, monkeypatch):
    """The mechanism under test, broken on purpose: every limb keeps its rest angle to its
    parent instead of turning to the track's bone. The drawn-joint oracle must fail it."""
    from cinekit.puppet import deform

    monkeypatch.setattr(deform, "limb_turn", lambda rig, target, a, b, parent_turn: parent_turn)
    dist, ang = joint_errors(runtime, "char1", "jumping_jacks", engine)
    found = np.isfinite(dist)
    assert np.median(dist[found]) > 0.02 or dist[found].max() > 0.05
    assert np.median(ang[np.isfinite(ang)]) > 3.0


def test_retargeting_gives_the_track_the_rigs_torso_shape(runtime):
    """The cause of the 0.25-figure-height drift: the track kept the mocap actor's torso
    (shoulders level with the neck, narrow hips) with the drawing's bone lengths, while an
    AnimatedDrawings rig's neck sits in the head and its hips are wide."""
    from cinekit.pose.angles import REST_POSE, bone_angles
    from cinekit.pose.retarget import retarget
    from cinekit.pose.skeleton import BONES

    torso = [k for k, b in enumerate(BONES) if b in ((1, 2), (1, 5), (1, 8), (1, 11))]

    def shape(pose):   # torso bone angles relative to the spine (neck -> hip midpoint)
        spine = pose[[8, 11]].mean(axis=0) - pose[1]
        return np.angle(np.exp(1j * (bone_angles(pose)[torso] - np.arctan2(spine[1], spine[0]))))

    rig = runtime.identities.get("char1").rig
    lengths = lengths_from_rig(rig)[0]
    assert np.abs(shape(retarget(REST_POSE, lengths, rest=rig)) - shape(rig)).max() < 0.01
    assert np.abs(shape(retarget(REST_POSE, lengths)) - shape(rig)).max() > 0.3   # the old track


def test_a_turning_torso_keeps_narrow_shoulders_on_the_track(runtime, engine):
    """char4's neck sits high above narrow shoulders, so the torso's rest vectors nearly
    share one direction and the least-squares frame is undetermined across it; it fell back
    to a similarity that cannot narrow the shoulders of a body turning 45 deg in depth
    (``jumping`` frame 4: 1.7 % of the figure's height off, 7.5 % before the torso retarget).
    The ridge fit (``deform._fit_frame``) keeps them on the track: the oracle's xfail is gone."""
    from cinekit.puppet.deform import part_transforms, posed_joints

    job = bvh_job(runtime, "char4", "jumping", N_FRAMES)
    binding = engine.puppet("char4", "front", False).binding
    rig = binding.rig
    height = lengths_from_rig(rig)[1]
    errs = []
    for f in range(job.frames - 1):          # the last frame is a profile (kept readable)
        target = job.pose[f, 0]
        drawn = posed_joints(binding, part_transforms(binding, target))
        s = frame_scale(rig, target)
        errs += [np.hypot(*(drawn[INDEX[j]] - target[INDEX[j]])) / (s * height) for j in ("right_shoulder", "left_shoulder")]
    print(f"turning shoulders: max {max(errs):.4f}")
    assert max(errs) <= 0.005, max(errs)
