"""Named poses: the bundled library (``library.yaml``) plus a project's ``poses/`` folders.

All poses are body space (x right, y down, floor at y = 0, one unit = ankles-to-nose height).

Bundled ``library.yaml``: ``{name: {description: str, symmetric: bool, joints: {joint: [x, y]}}}``.
On load every bundled pose is normalised to ``DEFAULT_LENGTHS`` (its bone angles are kept and
the pose is rebuilt by forward kinematics from its neck, then shifted vertically so its lowest
ankle keeps its stored height), and ``symmetric`` poses are made exactly mirror-symmetric
about x = 0.

Project pose files (``poses/<name>.yaml``, name = file stem; a project file overrides a bundled
pose of the same name), one of:

```yaml
# a still pose: joint name -> [x, y] (body space); joints left out are missing
joints:
  neck: [0.0, -0.86]
  nose: [0.0, -1.0]
  ...
```

```yaml
# a motion: fps and one row per frame of 18 [x, y] in skeleton.JOINTS order, null = missing
fps: 24
frames:
  - [[0.0, -1.0], [0.0, -0.86], null, ...]
```

Optional keys in both: ``description`` (str). Project poses are returned as stored (not
normalised; ``retarget`` imposes a character's proportions anyway). ``save_pose`` /
``save_motion`` write these formats (``cinekit poses import``); ``save_motion`` writes the
binary layout of ``motion_store`` (a few-line header + ``<name>.npz``), so no command parses a
motion's frames as YAML. ``load_library`` reads headers only and loads a motion's frames when
its value is first looked up (``check`` asks only which names exist).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from cinekit.errors import UserError
from cinekit.pose import motion_store
from cinekit.pose.angles import DEFAULT_LENGTHS, ROOT, bone_angles, from_angles
from cinekit.pose.camera import mirror
from cinekit.pose.skeleton import INDEX, JOINTS, N_JOINTS

LIBRARY_FILE = Path(__file__).with_name("library.yaml")
_ANKLES = [INDEX["right_ankle"], INDEX["left_ankle"]]
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class PoseFileError(UserError, ValueError):
    """A pose file that cannot be read: a user error (exit 1) and a ValueError."""


def normalise(pose: np.ndarray, lengths: np.ndarray = DEFAULT_LENGTHS) -> np.ndarray:
    """Rebuild ``(18, 2)`` body space with bone ``lengths`` ``(17,)``, same angles and neck, then
    shift vertically so the lowest ankle keeps its height; ``(18, 2)`` body space."""
    pose = np.asarray(pose, dtype=np.float64)
    out = from_angles(pose[ROOT], bone_angles(pose), lengths)
    if np.isfinite(pose[_ANKLES, 1]).any() and np.isfinite(out[_ANKLES, 1]).any():
        out[:, 1] += np.nanmax(pose[_ANKLES, 1]) - np.nanmax(out[_ANKLES, 1])
    return out


def symmetrise(pose: np.ndarray) -> np.ndarray:
    """Exactly mirror-symmetric about x = 0: ``(pose + mirror(pose)) / 2``, ``(..., 18, 2)``."""
    pose = np.asarray(pose, dtype=np.float64)
    return (pose + mirror(pose, 0.0)) / 2.0


def _joints(data: object, where: str) -> np.ndarray:
    if not isinstance(data, dict) or not data:
        raise PoseFileError(f"{where}: joints must be a mapping of joint name -> [x, y]")
    pose = np.full((N_JOINTS, 2), np.nan)
    for name, xy in data.items():
        if name not in INDEX:
            raise PoseFileError(f"{where}: unknown joint {name!r}",
                                hint=f"joints are {', '.join(JOINTS)}")
        pose[INDEX[name]] = _xy(xy, f"{where}: {name}")
    return pose


def _xy(xy: object, where: str) -> tuple[float, float]:
    if xy is None:
        return (np.nan, np.nan)
    if (not isinstance(xy, (list, tuple)) or len(xy) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xy)):
        raise PoseFileError(f"{where}: expected [x, y] numbers or null, got {xy!r}")
    return (float(xy[0]), float(xy[1]))


@lru_cache(maxsize=1)
def _bundled() -> dict[str, np.ndarray]:
    data = yaml.safe_load(LIBRARY_FILE.read_text(encoding="utf-8"))
    out = {}
    for name, entry in data.items():
        pose = normalise(_joints(entry["joints"], f"{LIBRARY_FILE.name}: {name}"))
        if entry.get("symmetric", False):
            if np.nanmax(np.abs(mirror(pose) - pose)) > 1e-3:
                raise ValueError(f"{LIBRARY_FILE.name}: {name} is marked symmetric but is not")
            pose = symmetrise(pose)
        pose.setflags(write=False)
        out[name] = pose
    return out


def bundled_descriptions() -> dict[str, str]:
    """Bundled pose name -> one-line description (for ``cinekit poses list``)."""
    data = yaml.safe_load(LIBRARY_FILE.read_text(encoding="utf-8"))
    return {name: str(entry.get("description", "")) for name, entry in data.items()}


def load_pose_file(path: str | Path) -> tuple[np.ndarray, float | None]:
    """Read one project pose file -> ``((18, 2), None)`` for a pose or ``((F, 18, 2), fps)``
    for a motion, body space. Malformed files raise PoseFileError naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PoseFileError(f"{path}: cannot read pose file: {exc}") from None
    if motion_store.is_header(data):
        npz, fps, count = motion_store.data_path(path, data)
        return motion_store.load(npz, count, path), fps
    if not isinstance(data, dict):
        raise PoseFileError(f"{path}: expected a mapping with `joints:` or `frames:` and `fps:`")
    extra = set(data) - {"joints", "frames", "fps", "description"}
    if extra or (("joints" in data) == ("frames" in data)):
        raise PoseFileError(f"{path}: a pose file holds either `joints:` or `frames:` + `fps:`"
                            + (f" (unknown keys: {', '.join(sorted(map(str, extra)))})" if extra else ""))
    if "joints" in data:
        if "fps" in data:
            raise PoseFileError(f"{path}: `fps:` only goes with `frames:`")
        return _joints(data["joints"], str(path)), None
    frames, fps = data["frames"], data.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0:
        raise PoseFileError(f"{path}: a motion needs `fps:` > 0, got {fps!r}")
    if not isinstance(frames, list) or not frames:
        raise PoseFileError(f"{path}: `frames:` must be a non-empty list")
    poses = np.full((len(frames), N_JOINTS, 2), np.nan)
    for f, row in enumerate(frames):
        if not isinstance(row, list) or len(row) != N_JOINTS:
            raise PoseFileError(f"{path}: frame {f}: expected {N_JOINTS} [x, y] or null")
        for j, xy in enumerate(row):
            poses[f, j] = _xy(xy, f"{path}: frame {f}: {JOINTS[j]}")
    return poses, float(fps)


def _project_files(extra_dirs: Iterable[str | Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in extra_dirs:
        for path in sorted(Path(folder).glob("*.yaml")):
            if not _NAME.match(path.stem):
                raise PoseFileError(f"{path}: pose names use letters, digits, _ . - only")
            files[path.stem] = path
    return files


class PoseLibrary(Mapping):
    """``{name: pose}`` whose binary motions load on first lookup (membership reads nothing)."""

    def __init__(self):
        self._values: dict[str, np.ndarray] = {}
        self._loaders: dict[str, Callable[[], np.ndarray]] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            self._values[name] = self._loaders.pop(name)()  # KeyError for an unknown name
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._loaders

    def __iter__(self):
        return iter([*self._values, *self._loaders])

    def __len__(self) -> int:
        return len(self._values) + len(self._loaders)


def _header(path: Path) -> tuple[Path, int] | None:
    """``(npz, frame_count)`` when ``path`` is a binary motion's header (checked against the
    archive's array header, no frames read), else None. Header files are a few lines; a file
    over 4 KB is an inline pose or motion and is parsed by ``load_pose_file``."""
    try:
        if path.stat().st_size > 4096:
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_pose_file reports it
    if not motion_store.is_header(data):
        return None
    npz, _, count = motion_store.data_path(path, data)
    motion_store.peek(npz, count, path)
    return npz, count


def load_library(extra_dirs: Iterable[str | Path] = ()) -> PoseLibrary:
    """Bundled poses plus every ``<name>.yaml`` in ``extra_dirs`` (later folders win) ->
    ``{name: (18, 2) pose or (F, 18, 2) motion}`` in body space. Fresh copies each call; a
    binary motion's frames are read when its name is looked up."""
    out = PoseLibrary()
    out._values.update({name: pose.copy() for name, pose in _bundled().items()})
    for name, path in _project_files(extra_dirs).items():
        out._values.pop(name, None)
        out._loaders.pop(name, None)
        header = _header(path)
        if header is None:
            out._values[name] = load_pose_file(path)[0]
        else:
            npz, count = header
            out._loaders[name] = lambda npz=npz, count=count, path=path: motion_store.load(npz, count, path)
    return out


def load_motions(extra_dirs: Iterable[str | Path] = ()) -> dict[str, tuple[np.ndarray, float]]:
    """Only the motions of ``extra_dirs``: ``{name: ((F, 18, 2) body space, fps)}``."""
    out = {}
    for name, path in _project_files(extra_dirs).items():
        poses, fps = load_pose_file(path)
        if fps is not None:
            out[name] = (poses, fps)
    return out


def motion_lengths(extra_dirs: Iterable[str | Path] = ()) -> dict[str, tuple[int, float]]:
    """Only the motions of ``extra_dirs``: ``{name: (frame count, fps)}``; a binary motion's
    frames are not read (its header and the archive's array header say both)."""
    out = {}
    for name, path in _project_files(extra_dirs).items():
        header = _header(path)
        if header is not None:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            _, fps, count = motion_store.data_path(path, data)
            out[name] = (int(count), float(fps))
            continue
        poses, fps = load_pose_file(path)
        if fps is not None:
            out[name] = (len(poses), fps)
    return out


def pose_names(extra_dirs: Iterable[str | Path] = ()) -> list[str]:
    """Sorted names of every bundled and project pose/motion."""
    return sorted(set(_bundled()) | set(_project_files(extra_dirs)))


def _num(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)


def save_pose(path: str | Path, pose: np.ndarray, description: str | None = None) -> None:
    """Write a ``(18, 2)`` body-space pose as a project pose file (missing joints left out)."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (N_JOINTS, 2):
        raise ValueError(f"pose must be (18, 2), got {pose.shape}")
    joints = {JOINTS[j]: [_num(pose[j, 0]), _num(pose[j, 1])]
              for j in range(N_JOINTS) if np.isfinite(pose[j]).all()}
    data: dict = {"description": description} if description else {}
    data["joints"] = joints
    Path(path).with_suffix(".npz").unlink(missing_ok=True)  # the frames of a motion this replaces
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None),
                          encoding="utf-8")


def save_motion(path: str | Path, poses: np.ndarray, fps: float,
                description: str | None = None) -> None:
    """Write ``(F, 18, 2)`` body-space poses at ``fps`` as a project motion file."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (N_JOINTS, 2) or len(poses) == 0:
        raise ValueError(f"poses must be (F, 18, 2) with F >= 1, got {poses.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    # Missing joints are NaN for the whole [x, y] pair, as the inline format's null.
    poses = np.where(np.isfinite(poses).all(axis=-1, keepdims=True), poses, np.nan)
    motion_store.save(path, poses, fps, description)
