"""Imported motions on disk: a small YAML header plus the frames in an ``.npz`` next to it.

A motion of 900 frames stored as YAML is ~300 KB that every command (``check``, ``render``,
``poses list``) parsed with PyYAML, seconds per file. Stored as binary, the header
(``poses/<name>.yaml``) stays a few lines and the frames are read only by whoever draws them:

```yaml
format: npz                # this layout (``frames:`` inline is the older one, still read)
fps: 24.0
frame_count: 900
data: walk.npz             # a file in the same folder: array ``poses`` (F, 18, 2) float64, NaN = missing
description: from walk.bvh # optional
```

``peek`` checks the header against the ``.npy`` header inside the archive (shape and dtype,
no frame data decompressed), so a damaged or mismatched file is reported where the library is
listed (``check``) at O(1) cost; ``load`` reads the frames.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import yaml

from cinekit.pose.skeleton import N_JOINTS

HEADER_KEYS = {"format", "fps", "frame_count", "data", "description"}
ARRAY = "poses"


def is_header(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == "npz"


def _error(msg: str):
    from cinekit.pose.library import PoseFileError

    return PoseFileError(msg, hint="import the motion again with `cinekit poses import FILE --name NAME`")


def data_path(header_path: Path, data: dict) -> tuple[Path, float, int]:
    """``(npz path, fps, frame_count)`` from a parsed header; the npz must sit next to it."""
    extra = set(data) - HEADER_KEYS
    if extra:
        raise _error(f"{header_path}: unknown keys in a motion header: {', '.join(sorted(map(str, extra)))}")
    fps, count, name = data.get("fps"), data.get("frame_count"), data.get("data")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0 or not np.isfinite(fps):
        raise _error(f"{header_path}: a motion needs `fps:` > 0, got {fps!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise _error(f"{header_path}: `frame_count:` must be a positive integer, got {count!r}")
    if not isinstance(name, str) or os.path.basename(name) != name or not name.endswith(".npz"):
        raise _error(f"{header_path}: `data:` must name an .npz file in the same folder, got {name!r}")
    return header_path.parent / name, float(fps), count


def peek(npz: Path, count: int, where: Path) -> None:
    """Check shape and dtype from the ``.npy`` header inside the archive (reads no frames)."""
    try:
        with zipfile.ZipFile(npz) as archive, archive.open(f"{ARRAY}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(member)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise _error(f"{where}: cannot read its frames {npz.name}: {exc}") from None
    if tuple(shape) != (count, N_JOINTS, 2) or np.dtype(dtype).kind != "f":
        raise _error(f"{where}: {npz.name} holds {dtype} {tuple(shape)}, the header says ({count}, {N_JOINTS}, 2)")


def load(npz: Path, count: int, where: Path) -> np.ndarray:
    """The ``(F, 18, 2)`` frames (float64, NaN = missing)."""
    try:
        with np.load(npz, allow_pickle=False) as archive:
            poses = np.asarray(archive[ARRAY], dtype=np.float64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise _error(f"{where}: cannot read its frames {npz.name}: {exc}") from None
    if poses.shape != (count, N_JOINTS, 2):
        raise _error(f"{where}: {npz.name} holds {poses.shape}, the header says ({count}, {N_JOINTS}, 2)")
    if np.isinf(poses).any():
        raise _error(f"{where}: {npz.name} holds infinite coordinates")
    return poses


def save(header_path: str | Path, poses: np.ndarray, fps: float, description: str | None = None) -> None:
    """Write ``<name>.npz`` then ``<name>.yaml`` (the header last: it is what makes the motion exist)."""
    header_path = Path(header_path)
    npz = header_path.with_suffix(".npz")
    tmp = npz.with_name(f".{npz.stem}.tmp.npz")
    np.savez_compressed(tmp, **{ARRAY: np.asarray(poses, dtype=np.float64)})
    os.replace(tmp, npz)
    data: dict = {"format": "npz", "fps": float(fps), "frame_count": int(len(poses)), "data": npz.name}
    if description:
        data["description"] = description
    tmp_header = header_path.with_name(f".{header_path.name}.tmp")
    tmp_header.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    os.replace(tmp_header, header_path)
