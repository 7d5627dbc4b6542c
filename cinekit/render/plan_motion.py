"""The planner's motion sources: a character's pose source (library pose, keyframes, stored
motion, motion sentence, BVH / JSON / video / detected motion file) -> a body-space track.

``MotionSources`` is a mixin of ``cinekit.render.plan.Planner``: it uses the planner's
``project``, ``library``, ``files``, ``cache_dir`` and the caches ``Planner.__init__`` sets up
(``_motions``, ``_library_motions``, ``_motion_names``, ``_texts``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.errors import UserError
from cinekit.render.plan_views import _projection
from cinekit.spec.models import PoseSpec


class MotionSources:
    """Pose source -> body-space track (and depth), with per-run caches (see the module doc)."""

    def _library_pose(self, name: str) -> np.ndarray:
        pose = np.asarray(self.library[name], dtype=np.float64)
        return pose

    def body_track(self, pose, frames: int, fps: float, list_path: Path) -> np.ndarray:
        """``(frames, 18, 2)`` body-space poses for one character's pose source."""
        return self.body_and_depth(pose, frames, fps, list_path)[0]

    def body_and_depth(self, pose, frames: int, fps: float, list_path: Path,
                       art: frozenset = frozenset({"front", "three_quarter", "side", "back"})):
        """(``(frames, 18, 2)`` body-space poses, ``(frames, 18)`` depth in body heights or None)
        for one character's pose source; ``art``: the views the character has drawings for (a
        3-D motion is never projected to a view the art cannot show, ``_projection``)."""
        from cinekit.pose.keyframes import interpolate, sample_times

        times = sample_times(frames, fps)
        if isinstance(pose, str):
            base = self._library_pose(pose)
            if base.ndim == 3:  # a stored motion used by name
                return self._resampled_library_motion(pose, fps, frames, PoseSpec(motion=pose)), None
            return np.broadcast_to(base, (frames, 18, 2)).copy(), None
        assert isinstance(pose, PoseSpec)
        if pose.source == "keyframes":
            from cinekit.pose.views import keyframe_depth

            keys = [(k.at, self._library_pose(k.pose), k.ease) for k in pose.keyframes]
            return interpolate(keys, times), keyframe_depth(pose.keyframes, times)
        if pose.source == "motion" and self.is_text_motion(pose):
            return self.text_track(pose.motion, frames, fps).poses.copy(), None
        if pose.source == "motion":
            return self._resampled_library_motion(pose.motion, fps, frames, pose), None
        return self._resampled_file_motion(pose, fps, frames, list_path, art)

    def is_text_motion(self, pose) -> bool:
        """``motion:`` names a stored motion (poses/ with frames), else it is a sentence
        (cinekit.pose.text_motion)."""
        if not isinstance(pose, PoseSpec) or pose.source != "motion":
            return False
        return pose.motion not in self._stored_motions()

    def _stored_motions(self) -> set:
        if self._motion_names is None:  # headers only: no motion's frames are read
            from cinekit.pose.library import motion_lengths

            self._motion_names = set(motion_lengths([self.project.root / "poses"]))
        return self._motion_names

    def text_track(self, text: str, frames: int, fps: float):
        """The ``TextTrack`` of a motion sentence (a located error if it does not parse: check
        reports the same at file:line:col)."""
        from cinekit.pose.text_motion import TextMotionError
        from cinekit.pose.text_track import text_track

        key = (text, frames, fps)
        if key not in self._texts:
            try:
                self._texts[key] = text_track(text, self.library, frames, fps, motions=self._stored_motions())
            except TextMotionError as exc:
                raise UserError(f"motion {text!r}: {exc.message}", hint=exc.hint) from None
        return self._texts[key]

    def _resampled_library_motion(self, name, fps, frames, pose: PoseSpec) -> np.ndarray:
        from cinekit.pose.library import load_motions
        from cinekit.pose.motion import Motion, resample

        if self._library_motions is None:  # parsed once per run, not once per shot
            self._library_motions = load_motions([self.project.root / "poses"])
        poses, motion_fps = self._library_motions[name]
        motion = Motion(poses, motion_fps, source=name)
        return resample(motion, fps, start=pose.start, end=pose.end, speed=pose.speed, loop=pose.loop, frames=frames)

    def _resampled_file_motion(self, pose: PoseSpec, fps, frames, list_path: Path, art=frozenset({"front"})):
        from cinekit.pose.motion import (
            body_unit,
            import_motion,
            resample,
            resample_depth,
            to_body_space,
        )

        path = (list_path.parent / getattr(pose, pose.source)).resolve()
        view, follow = _projection(pose.view, art) if pose.source == "bvh" else (pose.view, False)
        key = (pose.source, str(path), view, follow, pose.person)
        if key not in self._motions:
            from cinekit.render.tracks import cached_track

            if self.files is not None:
                self.files.digest(path)  # the version of the file this run uses (checked after reading)
            if pose.source == "detect":
                from cinekit.pose.detect import body_weights_path, choose_detector, detect_poses

                configured = self.project.config.annotators
                annot = (self.project.root / configured).resolve() if configured else None
                detector = choose_detector(annot, pose.person)   # mediapipe when installed
                if detector == "mediapipe":
                    from cinekit.capture.body import NAME
                    from cinekit.capture.cache import detector_id

                    # the wheel's model files too: the same version string with other models differs
                    options = {"person": 0, "detector": NAME, "models": detector_id("body")}
                else:
                    weights = self.files.digest(body_weights_path(annot)) if self.files is not None else None
                    options = {"person": pose.person, "weights": weights}
                motion = cached_track(path, "detect", options,
                                      lambda: detect_poses(path, annot, person=pose.person, detector=detector),
                                      files=self.files, cache_dir=self.cache_dir)
            elif pose.source == "video":  # decoding a skeleton video is slow: cached by content
                motion = cached_track(path, "video", {"person": pose.person},
                                      lambda: import_motion(path, person=pose.person),
                                      files=self.files, cache_dir=self.cache_dir)
            elif pose.source == "bvh":
                motion = import_motion(path, view=view, follow=follow)
            else:
                motion = import_motion(path, person=pose.person)
            if self.files is not None and not self.files.unchanged(path):
                raise UserError(f"{self.project.rel(path)} changed while it was being read",
                                hint="run the command again")
            self._motions[key] = motion
        motion = self._motions[key]
        timing = dict(start=pose.start, end=pose.end, speed=pose.speed, loop=pose.loop, frames=frames)
        poses = resample(motion, fps, **timing)
        depth = resample_depth(motion, fps, **timing)
        if depth is not None:
            depth = depth / body_unit(poses)    # body heights, as the track
        return to_body_space(poses), depth
