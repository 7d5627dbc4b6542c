"""Pose tracks read from videos, cached by content: decode a skeleton video or run the pose
detector on footage once, not on every run.

``<cache_dir>/tracks/<key>.npz`` holds the track (``poses`` (frames, 18, 2), ``fps``); the key
is the sha256 of the file's bytes (``FileDigests``), the options that change the track (person,
view, the detector's weights) and ``TRACK_VERSION``. A moved or renamed file keeps its cache;
an edited one gets a new entry. Without a cache folder the track is simply computed.

A reader that opens the file by path after its digest was taken could see another version of
it; ``FileDigests.unchanged`` catches an edit made meanwhile and the job fails ("run again")
instead of caching a track under the wrong key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cinekit import __version__
from cinekit.errors import UserError

TRACK_VERSION = "1"  # bump when the importers' output changes


def track_key(digest: str, source: str, options: dict[str, Any]) -> str:
    text = json.dumps({"digest": digest, "source": source, "options": options, "version": TRACK_VERSION,
                       "cinekit": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_cached_arrays(path: Path, target: Callable[[str], Path], compute: Callable[[], dict[str, np.ndarray]],
                       names: tuple[str, ...], *, files,
                       check: Callable[[dict[str, np.ndarray]], bool] | None = None) -> dict[str, np.ndarray]:
    """Arrays computed from the file at ``path``, cached in the npz ``target(digest)``.

    An entry that is absent, truncated, not an npz, or fails ``check`` is computed again and
    rewritten, never an error; a file edited while it was read fails the job ("run again")
    instead of caching values under the wrong key; a cache that cannot be written only costs
    time next run. Shared by the pose tracks here and the face captures (capture.cache)."""
    digest = files.digest(path)
    if digest == "missing":
        return compute()  # the reader says what is missing
    where = target(digest)
    try:
        with np.load(where, allow_pickle=False) as data:
            got = {name: data[name] for name in names}
        if check is None or check(got):
            return got
    except Exception:  # noqa: BLE001 - absent or damaged (a truncated npz is a BadZipFile): computed again
        pass
    out = compute()
    if not files.unchanged(path):
        raise UserError(f"{path} changed while it was being read", hint="run the command again")
    _save(where, out)
    return out


def cached_track(path: Path, source: str, options: dict[str, Any], compute: Callable[[], Any], *,
                 files=None, cache_dir: Path | None = None):
    """The ``Motion`` of ``path`` (``compute()`` it, or load it from the cache)."""
    from cinekit.pose.motion import Motion

    if files is None or cache_dir is None:
        return compute()

    def arrays():
        motion = compute()
        return {"poses": motion.poses, "fps": np.float64(motion.fps), "source": np.str_(motion.source)}

    got = file_cached_arrays(path, lambda digest: Path(cache_dir) / "tracks" / f"{track_key(digest, source, options)}.npz",
                             arrays, ("poses", "fps", "source"), files=files)
    return Motion(got["poses"], float(got["fps"]), source=str(got["source"]))


def _save(target: Path, arrays: dict[str, np.ndarray]) -> None:
    from cinekit.render.writers import atomic_path

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time next run
        pass
