"""BVH files whose rest skeleton lies along another axis than the motion's up (issue 11).

Real clips are rewritten two ways, each keeping the world motion the same:
- ``world``: the root's channels turn the whole figure (an exporter that stands a Z-up rig
  up in a Y-up scene at the root): the rest skeleton still says the old up axis;
- ``rest``: every rest offset turned, every joint's rotation conjugated so the posed
  skeleton is unchanged: the rest skeleton lies along another axis than the motion.
The imported track must equal the original's. Before the fix the up axis came from the
rest skeleton and the projection fell over (a figure lying on its side).
"""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose.bvh import Bvh, BvhJoint, forward_kinematics, load_bvh, parse_bvh

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation


def write_bvh(bvh: Bvh) -> str:
    """BVH text of a parsed file (enough of the format to round-trip through ``parse_bvh``)."""
    lines = ["HIERARCHY"]
    children: dict[int, list[int]] = {}
    for j, joint in enumerate(bvh.joints):
        children.setdefault(joint.parent, []).append(j)

    def emit(j: int, depth: int) -> None:
        joint, pad = bvh.joints[j], "  " * depth
        lines.append(f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.9f}' for v in joint.offset)}")
        lines.append(f"{pad}  CHANNELS {len(joint.channels)} {' '.join(joint.channels)}")
        for c in children.get(j, []):
            emit(c, depth + 1)
        if joint.end_site is not None:
            lines.extend([f"{pad}  End Site", pad + "  {",
                          f"{pad}    OFFSET {' '.join(f'{v:.9f}' for v in joint.end_site)}", pad + "  }"])
        lines.append(pad + "}")

    for root in children[-1]:
        emit(root, 0)
    lines += ["MOTION", f"Frames: {bvh.motion.shape[0]}", f"Frame Time: {bvh.frame_time:.9f}"]
    lines += [" ".join(f"{v:.9f}" for v in row) for row in bvh.motion]
    return "\n".join(lines) + "\n"


def _rot_channels(joint: BvhJoint) -> tuple[list[int], str]:
    """Indices (into the joint's channels) of its rotation channels, and their scipy order."""
    idx = [k for k, c in enumerate(joint.channels) if c.endswith("rotation")]
    return idx, "".join(joint.channels[k][0] for k in idx)


def _matrices(bvh: Bvh, joint: BvhJoint) -> np.ndarray:
    idx, order = _rot_channels(joint)
    angles = bvh.motion[:, [joint.channel_start + k for k in idx]]
    return Rotation.from_euler(order.upper(), angles, degrees=True).as_matrix()  # intrinsic = BVH


def _set_matrices(motion: np.ndarray, joint: BvhJoint, mats: np.ndarray) -> None:
    idx, order = _rot_channels(joint)
    motion[:, [joint.channel_start + k for k in idx]] = Rotation.from_matrix(mats).as_euler(order.upper(), degrees=True)


def turned(bvh: Bvh, how: str, q: np.ndarray) -> Bvh:
    """``bvh`` rewritten so that ``how`` (``world`` or ``rest``) is turned by rotation ``q``."""
    motion = bvh.motion.copy()
    joints = [BvhJoint(j.name, j.parent, j.offset.copy(), list(j.channels), j.channel_start,
                       None if j.end_site is None else j.end_site.copy()) for j in bvh.joints]
    root = joints[0]
    if how == "world":  # world' = q world: root rotation q R, root translation q (offset + pos)
        _set_matrices(motion, root, q @ _matrices(bvh, root))
        pos_k = [k for k, c in enumerate(root.channels) if c.endswith("position")]
        cols = [root.channel_start + k for k in pos_k]
        motion[:, cols] = (q @ (motion[:, cols] + root.offset).T).T - q @ root.offset
        root.offset = q @ root.offset
        return Bvh(joints, bvh.frame_time, motion)
    # rest' = q rest: offsets q o; child locals q L q^T; root global R q^T (world unchanged)
    for j, (src, dst) in enumerate(zip(bvh.joints, joints, strict=True)):
        dst.offset = q @ src.offset if j else src.offset
        if src.end_site is not None:
            dst.end_site = q @ src.end_site
        mats = _matrices(bvh, src)
        _set_matrices(motion, dst, mats @ q.T if j == 0 else q @ mats @ q.T)
    return Bvh(joints, bvh.frame_time, motion)


CASES = [
    ("jumping_jacks", "world", "x", 90), ("jumping_jacks", "rest", "x", -90),
    ("jumping_jacks", "rest", "z", 90), ("wave_hello", "world", "x", -90),
    ("wave_hello", "rest", "y", 90),
]


@pytest.mark.parametrize("name, how, axis, degrees", CASES)
def test_turned_rest_or_world_imports_the_same_track(data_dir, tmp_path, name, how, axis, degrees):
    src = data_dir / "animated-drawings" / "bvh" / f"{name}.bvh"
    bvh = parse_bvh(src.read_text(), name)
    if bvh.motion.shape[0] > 200:  # keep the test fast: every 4th frame of the long clips
        bvh = Bvh(bvh.joints, bvh.frame_time * 4, bvh.motion[::4])
    original = tmp_path / "original.bvh"
    original.write_text(write_bvh(bvh))
    q = Rotation.from_euler(axis, degrees, degrees=True).as_matrix()
    other = turned(bvh, how, q)
    # The rewrite really keeps the world motion (world: turned by q) ...
    p0, _, _ = forward_kinematics(bvh)
    p1, _, _ = forward_kinematics(other)
    np.testing.assert_allclose(p1, p0 @ q.T if how == "world" else p0, atol=1e-6)
    # ... and really moves the up axis away from the rest skeleton's.
    path = tmp_path / "turned.bvh"
    path.write_text(write_bvh(other))
    want = load_bvh(original, view="front")
    got = load_bvh(path, view="front")
    height = np.nanmax(want.poses[..., 1]) - np.nanmin(want.poses[..., 1])
    err = np.abs(got.poses - want.poses)
    assert np.nanmax(err) < 1e-3 * height, np.nanmax(err) / height
    assert np.isnan(got.poses).sum() == np.isnan(want.poses).sum()
    # and the figure stands: head above the feet in every frame (y down).
    assert (want.poses[:, 0, 1] < want.poses[:, 10, 1]).all()
