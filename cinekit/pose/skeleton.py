"""The COCO-18 skeleton used by OpenPose ControlNets: joint names, bones, limb colours.

A pose is a ``(18, 2)`` float array (x right, y down); a missing joint is ``NaN``.
A pose track is ``(frames, characters, 18, 2)`` in output pixels.

Two coordinate spaces are used:
- **body space**: what the pose library, keyframes and motion importers produce: y down,
  origin on the floor midway between the ankles of the character's rest stance, one unit =
  the standing height from the ankles to the nose of the source body. Root motion (a walk
  that travels, a jump) is expressed in these units.
- **pixels**: the job's output image, after retargeting to a character's proportions and
  framing by the camera.
"""

from __future__ import annotations

import numpy as np

JOINTS: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
"""COCO-18 order. "right" is the character's right (the viewer's left in a front view)."""

N_JOINTS = 18
INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINTS)}

# Kinematic tree rooted at the neck: (parent, child) per bone, parents before children,
# so forward kinematics is one pass in this order.
BONES: tuple[tuple[int, int], ...] = (
    (1, 0),            # neck -> nose
    (1, 2), (2, 3), (3, 4),     # right arm
    (1, 5), (5, 6), (6, 7),     # left arm
    (1, 8), (8, 9), (9, 10),    # right leg
    (1, 11), (11, 12), (12, 13),  # left leg
    (0, 14), (14, 16),          # right eye, right ear
    (0, 15), (15, 17),          # left eye, left ear
)
PARENT: tuple[int, ...] = tuple(
    next((p for p, c in BONES if c == j), -1) for j in range(N_JOINTS)
)

# The 17 limbs drawn by OpenPose (controlnet_aux.open_pose.util.draw_bodypose), 0-based,
# and their standard colours (RGB), which ControlNet openpose models were trained on.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
"""Joint colours; limb ``i`` is drawn in ``COLORS[i]``."""

# Left/right joint pairs, for mirroring.
MIRROR: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)


def empty_pose() -> np.ndarray:
    """An all-missing pose, ``(18, 2)`` NaN."""
    return np.full((N_JOINTS, 2), np.nan, dtype=np.float64)


def pose_from_dict(joints: dict[str, tuple[float, float]]) -> np.ndarray:
    """``{name: (x, y)}`` -> ``(18, 2)``; joints not named are NaN. Unknown names raise KeyError."""
    pose = empty_pose()
    for name, xy in joints.items():
        pose[INDEX[name]] = xy
    return pose
