"""Pose detection on real footage, offline: MediaPipe's BlazePose or the OpenPose body model.

Two detectors (``choose_detector``):
- **mediapipe** (the default when installed: the capture extra, docs/capture.md): its wheel
  ships the model, so a fresh install detects with no weights to find (``cinekit.capture.body``).
  It follows one person.
- **openpose** (controlnet_aux): used when mediapipe is absent or ``person:`` picks someone
  other than the first. The weights come only from a local annotator folder that the user
  configures (``annotators:`` in cinekit.yaml, laid out like the ``lllyasviel/Annotators``
  repository). The ``.pth`` file is a pickle, and unpickling can run code: it is loaded only
  because the user pointed cinekit at that folder explicitly; nothing is downloaded. torch and
  controlnet_aux are imported lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.errors import UserError
from cinekit.pose.motion import VIDEO_SUFFIXES, Motion
from cinekit.pose.skeleton import N_JOINTS

BODY_WEIGHTS = "body_pose_model.pth"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def body_weights_path(annotator_dir: str | Path | None) -> Path:
    """The body model file in the annotator folder; ``UserError`` naming it when missing."""
    hint = (
        f"set `annotators:` in cinekit.yaml to a local folder holding {BODY_WEIGHTS} "
        "(the lllyasviel/Annotators layout); cinekit never downloads it"
    )
    if annotator_dir is None:
        raise UserError(f"pose detection needs {BODY_WEIGHTS}, and no annotator folder is configured", hint=hint)
    folder = Path(annotator_dir)
    if not folder.is_dir():
        raise UserError(f"annotator folder {folder} does not exist (expected {folder / BODY_WEIGHTS})", hint=hint)
    for candidate in (folder / BODY_WEIGHTS, folder / "annotator" / "ckpts" / BODY_WEIGHTS):
        if candidate.is_file():
            return candidate
    raise UserError(f"{folder / BODY_WEIGHTS} not found", hint=hint)


def choose_detector(annotator_dir: str | Path | None, person: int = 0) -> str:
    """``"mediapipe"`` or ``"openpose"`` for this request; ``UserError`` when neither can serve it."""
    from cinekit.capture import mediapipe_graphs

    if person == 0 and mediapipe_graphs.available():
        return "mediapipe"
    if annotator_dir is None and person == 0:
        raise UserError("pose detection needs mediapipe (the capture extra) or the OpenPose annotator weights",
                        hint=mediapipe_graphs.INSTALL_HINT + f"; or set `annotators:` in cinekit.yaml to a "
                        f"folder holding {BODY_WEIGHTS}")
    if annotator_dir is None:
        raise UserError(f"person: {person} needs the OpenPose annotator weights (mediapipe follows one person)",
                        hint=f"set `annotators:` in cinekit.yaml to a local folder holding {BODY_WEIGHTS}")
    return "openpose"


def _frames(path: Path):
    if path.suffix.lower() in IMAGE_SUFFIXES:
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise UserError(f"{path}: cannot read image")
        yield img[..., ::-1]
        return
    from cinekit.pose.skeleton_video import read_frames

    yield from read_frames(path)


def detect_poses(
    path: str | Path,
    annotator_dir: str | Path | None,
    person: int = 0,
    fps: float | None = None,
    device: str = "cpu",
    detector: str = "openpose",
) -> Motion:
    """Footage (video, GIF or one image) -> ``Motion`` of detected COCO-18 poses (pixels).

    ``detector``: ``"openpose"`` (the annotator weights) or ``"mediapipe"`` (person 0 only; see
    ``choose_detector``). ``person``: index among the people found in each frame, by OpenPose's
    score (0 = best). ``fps``: defaults to the video's (12 for a single image).
    """
    if detector == "mediapipe":
        from cinekit.capture.body import detect_motion

        if person != 0:
            raise UserError(f"person: {person} needs the OpenPose detector (mediapipe follows one person)")
        motion = detect_motion(path)
        return motion if fps is None else Motion(motion.poses, fps=fps, source=motion.source)
    weights = body_weights_path(annotator_dir)
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: footage not found")
    from controlnet_aux.open_pose.body import Body  # lazy: torch

    body = Body(str(weights)).to(device)
    poses = []
    for rgb in _frames(p):
        candidate, subset = body(np.ascontiguousarray(rgb[..., ::-1]))  # the model wants BGR
        pose = np.full((N_JOINTS, 2), np.nan)
        people = sorted(body.format_body_result(candidate, subset), key=lambda r: -r.total_score)
        if person < len(people):
            for j, kp in enumerate(people[person].keypoints[:N_JOINTS]):
                if kp is not None:
                    pose[j] = (kp.x, kp.y)
        poses.append(pose)
    if fps is None:
        if p.suffix.lower() in VIDEO_SUFFIXES:
            from cinekit.pose.skeleton_video import fps_of

            fps = fps_of(p)
        else:
            fps = 12.0
    from cinekit.pose.clean import clean_track  # a detector glitches like a decoded video

    return Motion(clean_track(np.stack(poses), fps), fps=fps, source=f"{p} (OpenPose body)")
