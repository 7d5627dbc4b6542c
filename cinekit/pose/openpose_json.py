"""OpenPose keypoint JSON -> COCO-18 ``Motion``.

Reads the standard OpenPose output (``{"people": [{"pose_keypoints_2d": [x, y, c] * K}]}``,
K = 18 for COCO or 25 for BODY_25), the OpenPose-editor export (the same plus
``canvas_width``/``canvas_height``; coordinates may be normalised to 0..1), a list of such
frames in one file, or a folder / list of per-frame files (sorted by name).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cinekit.pose.motion import Motion, MotionFormatError
from cinekit.pose.skeleton import N_JOINTS

# BODY_25 index for each COCO-18 joint (BODY_25 adds MidHip at 8 and six foot points).
BODY25_TO_COCO18: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


def keypoints_to_pose(flat, width: float | None = None, height: float | None = None) -> np.ndarray:
    """``[x, y, c] * K`` (K = 18 or 25) -> ``(18, 2)``; confidence 0 -> NaN.

    When every coordinate is within 0..1 and a canvas size is given, they are scaled to pixels.
    """
    arr = np.asarray(flat, dtype=np.float64).reshape(-1)
    if arr.size % 3:
        raise ValueError(f"pose_keypoints_2d has {arr.size} values, not a multiple of 3 (x, y, c)")
    kp = arr.reshape(-1, 3)
    if kp.shape[0] == 25:
        kp = kp[list(BODY25_TO_COCO18)]
    elif kp.shape[0] != N_JOINTS:
        raise ValueError(f"pose_keypoints_2d has {kp.shape[0]} keypoints; expected 18 (COCO) or 25 (BODY_25)")
    pose = kp[:, :2].copy()
    pose[~(kp[:, 2] > 0)] = np.nan
    if width and height and np.isfinite(pose).any() and np.nanmax(np.abs(pose)) <= 1.0:
        pose *= (width, height)
    return pose


def _frames_from_doc(doc, where: str) -> list[dict]:
    """One parsed JSON document -> its frames (each a dict with ``people``)."""
    if isinstance(doc, list):
        if not all(isinstance(d, dict) for d in doc):
            raise MotionFormatError(f"{where}: a list of frames must hold JSON objects")
        return doc
    if isinstance(doc, dict):
        return [doc]
    raise MotionFormatError(f"{where}: expected a JSON object or a list of frames")


def _pose_of_frame(frame: dict, person: int, where: str) -> np.ndarray:
    people = frame.get("people")
    if people is None:
        keys = ", ".join(sorted(frame)) or "none"
        raise MotionFormatError(
            f"{where}: no body keypoints (no 'people' list; keys: {keys})",
            hint="a hand/face-only OpenPose-editor export cannot drive a body; export the body pose",
        )
    if not people:
        return np.full((N_JOINTS, 2), np.nan)  # nobody in this frame
    if person >= len(people):
        raise MotionFormatError(f"{where}: person {person} requested, the frame has {len(people)}")
    entry = people[person]
    flat = entry.get("pose_keypoints_2d") if isinstance(entry, dict) else None
    if flat is None:
        raise MotionFormatError(f"{where}: person {person} has no pose_keypoints_2d")
    try:
        return keypoints_to_pose(flat, frame.get("canvas_width"), frame.get("canvas_height"))
    except ValueError as e:
        raise MotionFormatError(f"{where}: person {person}: {e}") from None


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MotionFormatError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None


def load_openpose_json(path, person: int = 0, fps: float = 12.0) -> Motion:
    """OpenPose JSON file, folder of per-frame files or list of files -> ``Motion`` (pixels).

    ``person``: index in each frame's ``people`` (frames without anybody are all NaN).
    ``fps``: the frame rate of a sequence (JSON holds none); default 12.
    """
    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
        source = f"{len(files)} JSON files"
    else:
        p = Path(path)
        if p.is_dir():
            files = sorted(p.glob("*.json"))
            if not files:
                raise MotionFormatError(f"{p}: folder has no .json files")
        else:
            files = [p]
        source = str(p)
    poses = []
    for f in files:
        frames = _frames_from_doc(_read(f), str(f))
        for i, frame in enumerate(frames):
            where = str(f) if len(frames) == 1 else f"{f}: frame {i}"
            poses.append(_pose_of_frame(frame, person, where))
    if not poses:
        raise MotionFormatError(f"{source}: no frames")
    return Motion(np.stack(poses), fps=fps, source=source)
