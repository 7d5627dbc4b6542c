"""Captures from footage, cached by content: run MediaPipe over a clip once, not on every plan.

Planning a shot whose character has ``performance: talk.mp4`` reads the face off every frame
(seconds per clip); a re-render whose outputs are all cached would pay that again each time.
``<cache_dir>/capture/<key>.npz`` keeps the arrays a capture returned. The key is a digest of:

- the sha256 of the footage's bytes (``FileDigests``, the bytes the decoder reads): a moved or
  renamed file keeps its entry, an edited one gets a new one;
- the detector: the installed mediapipe version and the sha256 of the graph and model files the
  graph loads from the wheel (``detector_id``), and ``CAPTURE_VERSION`` for cinekit's own maths;
- the request (``fps``, ``n_frames``, any option that changes the values).

Entries are written atomically (a temporary file renamed over the target), so a crash leaves the
old entry or none. An entry that cannot be read (absent, truncated, wrong arrays) is computed
again, and a cache folder that cannot be written only costs the capture next time: the cache is
never an error. Arrays go through ``.npz`` unchanged, so cached values are bit-identical.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cinekit import __version__

CAPTURE_VERSION = "1"   # bump when cinekit's measures on the landmarks change

# the wheel folders whose graphs and models each capture loads (detector + landmark stages)
_MODEL_DIRS = {
    "face": ("mediapipe/modules/face_detection", "mediapipe/modules/face_landmark"),
    "body": ("mediapipe/modules/pose_detection", "mediapipe/modules/pose_landmark"),
}


@functools.lru_cache(maxsize=None)
def detector_id(kind: str) -> str:
    """``mediapipe <version> <sha256 of the graph and model files>`` for ``kind`` (face/body),
    found without importing mediapipe (~2 s); ``"absent"`` when it is not installed."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return "absent"
    root = Path(list(spec.submodule_search_locations)[0]).parent
    h = hashlib.sha256()
    for folder in _MODEL_DIRS[kind]:
        for f in sorted((root / folder).glob("*")):
            if f.suffix in (".tflite", ".binarypb"):
                h.update(f"{folder}/{f.name}\0".encode())
                h.update(f.read_bytes())
    return f"mediapipe {importlib.metadata.version('mediapipe')} {h.hexdigest()[:16]}"


def capture_key(digest: str, kind: str, options: dict[str, Any]) -> str:
    text = json.dumps({"digest": digest, "kind": kind, "detector": detector_id(kind), "options": options,
                       "version": CAPTURE_VERSION, "cinekit": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_arrays(path: Path, kind: str, options: dict[str, Any], names: tuple[str, ...],
                  compute: Callable[[], dict[str, np.ndarray]], *, files=None,
                  cache_dir: Path | None = None,
                  check: Callable[[dict[str, np.ndarray]], bool] | None = None) -> dict[str, np.ndarray]:
    """``compute()``'s arrays (named ``names``) for the footage at ``path``, or the cached ones.

    ``files`` (``FileDigests``) gives the footage's digest and checks it did not change while
    it was read; without ``files`` or ``cache_dir`` the capture is simply computed. ``check``:
    whether a loaded entry has the expected shapes (one that fails it is computed again)."""
    if files is None or cache_dir is None:
        return compute()
    from cinekit.render.tracks import file_cached_arrays

    return file_cached_arrays(path, lambda digest: Path(cache_dir) / "capture" / f"{capture_key(digest, kind, options)}.npz",
                              compute, names, files=files, check=check)
