"""Imported motion: a 2D COCO-18 pose sequence with its frame rate, resampling, body space.

Pure numpy. ``import_motion`` dispatches a file to the right importer (BVH, OpenPose JSON,
rendered skeleton video); importers are imported lazily so that this module stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinekit.errors import UserError
from cinekit.pose.skeleton import INDEX, N_JOINTS

NOSE, R_ANKLE, L_ANKLE = INDEX["nose"], INDEX["right_ankle"], INDEX["left_ankle"]

VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".mov", ".avi", ".mkv")


class MotionFormatError(UserError, ValueError):
    """A motion file that cannot be read (malformed, empty, no body): a user error and a ValueError."""


@dataclass
class Motion:
    """A pose sequence as read from a file: source 2D coordinates, y down, NaN = missing."""

    poses: np.ndarray  # (frames, 18, 2) source units (pixels, or BVH units projected)
    fps: float
    source: str = ""
    # (frames, 18) each joint's distance toward the camera, source units (a BVH's 3-D);
    # None for 2-D sources
    depth: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses, dtype=np.float64)
        if self.poses.ndim != 3 or self.poses.shape[1:] != (N_JOINTS, 2):
            raise ValueError(f"Motion.poses must be (frames, 18, 2), got {self.poses.shape}")
        if self.depth is not None:
            self.depth = np.asarray(self.depth, dtype=np.float64)
            if self.depth.shape != self.poses.shape[:2]:
                raise ValueError(f"Motion.depth must be (frames, 18), got {self.depth.shape}")
        if not self.fps > 0:
            raise ValueError(f"Motion.fps must be > 0, got {self.fps}")

    @property
    def frames(self) -> int:
        return int(self.poses.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered by the frames, each lasting ``1/fps``."""
        return self.frames / self.fps


def _interp(poses: np.ndarray, idx: np.ndarray, wrap: bool) -> np.ndarray:
    """Linear interpolation of ``poses`` (F,18,2) at fractional frame indices ``idx`` (N,).

    A result is NaN where a contributing neighbour (weight > 0) is NaN.
    """
    n = poses.shape[0]
    i0 = np.floor(idx).astype(np.int64)
    w = (idx - i0)[:, None, None]
    i1 = i0 + 1
    if wrap:
        i0, i1 = i0 % n, i1 % n
    else:
        i0, i1 = np.clip(i0, 0, n - 1), np.clip(i1, 0, n - 1)
    a, b = poses[i0], poses[i1]
    out = a * (1.0 - w) + b * w
    out = np.where(w == 0.0, a, out)
    return np.where(w == 1.0, b, out)


def resample(
    motion: Motion,
    fps: float,
    start: float | None = None,
    end: float | None = None,
    speed: float = 1.0,
    loop: bool = False,
    frames: int | None = None,
) -> np.ndarray:
    """Resample a motion to a shot's frame rate by time: ``(frames, 18, 2)`` source units.

    Source frame ``k`` is at ``k / motion.fps`` seconds. The clip is trimmed to
    ``[start, end]`` seconds (source time; defaults: first and last frame), played at
    ``speed`` (2 = twice as fast) and sampled every ``1 / fps`` seconds, interpolating
    linearly between source frames. ``frames`` defaults to the trimmed clip's length at
    the new rate; when longer, the clip loops (period = trimmed frame count / source fps,
    the last frame blends into the first) if ``loop``, else holds its last frame.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if motion.frames == 0:
        raise ValueError("cannot resample an empty motion")
    last_t = (motion.frames - 1) / motion.fps
    t0 = 0.0 if start is None else float(start)
    t1 = last_t if end is None else float(end)
    if t0 < 0 or t0 > last_t:
        raise ValueError(f"start={t0:g}s is outside the clip (0 to {last_t:g}s)")
    t1 = min(t1, last_t)
    if t1 < t0:
        raise ValueError(f"end={t1:g}s is before start={t0:g}s")
    span = t1 - t0
    if frames is None:
        frames = int(np.floor(span / speed * fps + 1e-9)) + 1
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    t = t0 + np.arange(frames, dtype=np.float64) / fps * speed  # source seconds
    if loop:
        # The window [t0, t1] repeats with one source frame's gap, the last frame
        # blending into the first across it.
        first, last = t0 * motion.fps, t1 * motion.fps
        idx = first + np.mod(t * motion.fps - first, last - first + 1.0)
        inside = _interp(motion.poses, np.minimum(idx, last), wrap=False)
        wrapped = _interp(motion.poses, np.full_like(idx, first), wrap=False)
        w = np.clip(idx - last, 0.0, 1.0)[:, None, None]
        out = np.where(w == 0.0, inside, inside * (1.0 - w) + wrapped * w)
        return out
    idx = np.minimum(t, t1) * motion.fps
    return _interp(motion.poses, idx, wrap=False)


def resample_depth(motion: Motion, fps: float, **options) -> np.ndarray | None:
    """``motion.depth`` sampled at the frames ``resample(motion, fps, **options)`` gives
    ``(frames, 18)``; None when the motion has no depth."""
    if motion.depth is None:
        return None
    twin = Motion(np.repeat(motion.depth[..., None], 2, axis=-1), motion.fps)
    return resample(twin, fps, **options)[..., 0]


def body_unit(poses: np.ndarray) -> float:
    """The length unit of ``to_body_space`` (source units per body height) of ``poses``
    (F, 18, 2): depths are divided by it to share the track's units."""
    body = to_body_space(poses)
    p = np.asarray(poses, dtype=np.float64)
    src = np.nanmax(p[..., 1]) - np.nanmin(p[..., 1])
    out = np.nanmax(body[..., 1]) - np.nanmin(body[..., 1])
    return float(src / out) if out > 0 else 1.0


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN where all are NaN (no warning)."""
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=axis) / n, np.nan)


def _upper_body_height(p: np.ndarray) -> float | None:
    """Rest height (ankles to nose, source units) of a body seen without its legs (or face),
    from the bones that exist: the sum over present bones of their 90th-percentile length
    over frames (a 2D bone only ever looks shorter than it is) divided by the same bones'
    share of the default body's height (``angles.DEFAULT_LENGTHS``). None if no bone."""
    from cinekit.pose.angles import DEFAULT_LENGTHS, bone_lengths

    lens = bone_lengths(p)  # (F, 17)
    have = np.isfinite(lens).any(axis=0)
    if not have.any():
        return None
    with np.errstate(all="ignore"):
        p90 = np.nanpercentile(lens[:, have], 90, axis=0)
    total = float(DEFAULT_LENGTHS[have].sum())
    return float(p90.sum() / total) if total > 0 and p90.sum() > 0 else None


def _first_finite(values: np.ndarray, frames: int) -> float | None:
    """Mean of the finite entries among the first ``frames`` of ``values`` (F,), else of the
    first finite one; None if there is none."""
    head = values[: max(1, frames)]
    if np.isfinite(head).any():
        return float(np.nanmean(head))
    finite = values[np.isfinite(values)]
    return float(finite[0]) if finite.size else None


def to_body_space(poses: np.ndarray, floor_frames: int = 10) -> np.ndarray:
    """Source 2D poses (F,18,2), y down -> body space (F,18,2) (see ``skeleton``).

    Unit: the rest height, the 75th percentile over frames of the ankles-to-nose extent
    (``mean ankle y - nose y``; robust to crouches and to a few bad frames). Floor: the
    lowest ankle over the first ``floor_frames`` frames is y = 0. x = 0 at the first frame's
    ankle midpoint. Root motion is kept.

    A body without legs or face (a waist-up video, an OpenPose export without legs) is
    framed from the joints that exist: the unit from its bones (``_upper_body_height``),
    the floor where the default body's feet would be below its hips (else its neck, else
    its nose) in the first frames, x = 0 under that joint. Missing joints stay NaN.
    Raises ``MotionFormatError`` when no frame has two joints to measure a bone.
    """
    from cinekit.pose.angles import REST_POSE

    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (N_JOINTS, 2) or p.shape[0] == 0:
        raise ValueError(f"poses must be (frames>0, 18, 2), got {p.shape}")
    ankles = p[:, [R_ANKLE, L_ANKLE]]  # (F, 2, 2)
    ankle_y = _nanmean(ankles[..., 1], axis=1)
    with np.errstate(invalid="ignore"):
        extent = ankle_y - p[:, NOSE, 1]
    extent = extent[np.isfinite(extent) & (extent > 0)]
    if extent.size:
        height = float(np.percentile(extent, 75))
    else:
        height = _upper_body_height(p)
        if height is None:
            raise MotionFormatError("no frame has two body joints: cannot measure the body's size",
                                    hint="the motion must show at least a neck and a shoulder, hip or nose")
    if np.isfinite(ankles).any():
        first = ankles[: max(1, floor_frames), :, 1]
        if not np.isfinite(first).any():
            first = ankles[..., 1]
        floor = float(np.nanmax(first))
        finite = np.flatnonzero(np.isfinite(ankles[:, :, 0]).any(axis=1))
        x0 = float(_nanmean(ankles[finite[0], :, 0], axis=0))
    else:
        hips = _nanmean(p[:, [INDEX["right_hip"], INDEX["left_hip"]]].transpose(0, 2, 1), axis=2)  # (F, 2)
        floor = x0 = None
        for xy, rest_y in ((hips, 0.5 * (REST_POSE[INDEX["right_hip"], 1] + REST_POSE[INDEX["left_hip"], 1])),
                           (p[:, INDEX["neck"]], REST_POSE[INDEX["neck"], 1]),
                           (p[:, NOSE], REST_POSE[NOSE, 1])):
            y = _first_finite(xy[:, 1], floor_frames)
            if y is not None:
                floor, x0 = y - rest_y * height, _first_finite(xy[:, 0], floor_frames)
                break
        if floor is None:  # only arms or a face: put the highest joint at the nose's height
            floor = float(np.nanmin(p[..., 1])) - REST_POSE[NOSE, 1] * height
            x0 = float(np.nanmean(p[..., 0]))
    origin = np.array([x0, floor])
    return (p - origin) / height


def import_motion(path: str | Path, **options) -> Motion:
    """Read motion from a file or folder, by kind: ``.bvh``; ``.json`` or a folder (or list) of
    OpenPose JSON files; a rendered skeleton video (``.mp4 .gif .webm .mov .avi .mkv``).

    ``options`` go to the importer (``view`` for BVH, ``person``, ``fps`` for JSON sequences).
    """
    if isinstance(path, (list, tuple)):
        from cinekit.pose.openpose_json import load_openpose_json

        return load_openpose_json(list(path), **options)
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: motion file not found")
    suffix = p.suffix.lower()
    if p.is_dir() or suffix == ".json":
        from cinekit.pose.openpose_json import load_openpose_json

        return load_openpose_json(p, **options)
    if suffix == ".bvh":
        from cinekit.pose.bvh import load_bvh

        return load_bvh(p, **options)
    if suffix in VIDEO_SUFFIXES:
        from cinekit.pose.skeleton_video import load_skeleton_video

        return load_skeleton_video(p, **options)
    raise MotionFormatError(
        f"{p}: unsupported motion file type {suffix or '(none)'!r}",
        hint="use .bvh, OpenPose .json (or a folder of them), or a skeleton video "
        + " ".join(VIDEO_SUFFIXES),
    )
