"""Body poses in real footage or photos -> COCO-18 (MediaPipe's BlazePose "full" model, offline).

BlazePose gives 33 landmarks (Bazarevsky et al., "BlazePose: On-device Real-time Body Pose
tracking", 2020); COCO-18 takes 17 of them by name and the neck as the shoulders' midpoint.
Both name sides from the person's own point of view, as cinekit does. A landmark the model
calls unseen (visibility below ``MIN_VISIBILITY``) or that lies outside the picture is NaN:
BlazePose always predicts all 33 points, legs cut off by the frame included, and those
guesses must not become a pose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.capture import footage, mediapipe_graphs
from cinekit.pose.skeleton import INDEX, N_JOINTS

MIN_VISIBILITY = 0.5
NAME = f"mediapipe {mediapipe_graphs.VERSION} BlazePose full"

# COCO-18 joint <- BlazePose landmark index (https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker)
FROM_BLAZEPOSE: dict[str, int] = {
    "nose": 0,
    "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
}


def to_coco(landmarks: np.ndarray | None, width: int, height: int,
            min_visibility: float = MIN_VISIBILITY) -> np.ndarray:
    """BlazePose ``(33, 5)`` (x, y, z pixels, visibility, presence) -> COCO-18 ``(18, 2)`` pixels,
    NaN for joints unseen or outside the ``width`` x ``height`` picture (all NaN for ``None``)."""
    pose = np.full((N_JOINTS, 2), np.nan)
    if landmarks is None:
        return pose
    for name, k in FROM_BLAZEPOSE.items():
        x, y, _z, vis, _presence = landmarks[k]
        seen = not (vis < min_visibility)            # NaN visibility (not given): trusted
        if seen and 0 <= x <= width - 1 and 0 <= y <= height - 1:
            pose[INDEX[name]] = (x, y)
    shoulders = pose[[INDEX["right_shoulder"], INDEX["left_shoulder"]]]
    if np.isfinite(shoulders).all():
        pose[INDEX["neck"]] = shoulders.mean(axis=0)
    return pose


def detect_image(rgb: np.ndarray) -> np.ndarray:
    """One picture ``(H, W, 3) uint8`` RGB -> COCO-18 ``(18, 2)`` pixels (all NaN: no body found)."""
    mediapipe_graphs.require("body pose detection")
    (marks,) = mediapipe_graphs.run(mediapipe_graphs.POSE, [rgb], tracking=False)
    return to_coco(marks, rgb.shape[1], rgb.shape[0])


def detect_track(path: str | Path, step: float = 1.0, tracking: bool = False) -> tuple[np.ndarray, float]:
    """Footage -> ``(raw (F, 18, 2) pixel track, fps)``: every ``step``-th frame, unsmoothed.

    ``tracking`` reuses each frame's landmarks as the next frame's region (MediaPipe's video
    mode): twice as fast, but when the camera or the body moves fast the region lags, and
    joints that left the picture (legs in a push-in) are dragged back inside it with
    confident visibility, measured on a push-in over real-refs/anyone-3.png: hips 60-180 px
    off at 480 px. Off (the default), each frame is detected afresh and those joints land
    outside the picture, where ``to_coco`` drops them."""
    mediapipe_graphs.require("body pose detection")
    p = Path(path)
    fps = footage.source_fps(p) / max(1.0, step)
    images = [rgb for _i, rgb in footage.frames(p, step=max(1.0, step))]
    if not images:
        from cinekit.errors import UserError

        raise UserError(f"{p}: no frames could be read")
    marks = mediapipe_graphs.run(mediapipe_graphs.POSE, images, tracking=tracking and len(images) > 1)
    return np.stack([to_coco(m, im.shape[1], im.shape[0]) for m, im in zip(marks, images)]), fps


def detect_motion(path: str | Path, step: float = 1.0, tracking: bool = False):
    """Footage -> a smoothed ``Motion`` (pixels): implausible glitches dropped, one-frame
    dropouts bridged, a zero-phase One-Euro filter (``pose.clean``); longer absences stay NaN."""
    from cinekit.pose.clean import CleanSettings, clean_track
    from cinekit.pose.motion import Motion

    raw, fps = detect_track(path, step, tracking)
    track = clean_track(raw, fps, CleanSettings(max_gap=0.0))  # max_gap 0: one frame at most
    return Motion(track, fps=fps, source=f"{path} ({NAME})")
