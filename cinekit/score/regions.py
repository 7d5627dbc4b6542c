"""Where each character is in an output: the ``<id>.masks.npz`` file, a user mask, or the whole frame.

The masks file (written by the render layer next to the main output, read by the scores):

    renders/ep01/s020.mp4          main output
    renders/ep01/s020.json         sidecar (job record)
    renders/ep01/s020.masks.npz    per-character regions (this module)

``<id>.masks.npz`` is a ``numpy.savez_compressed`` archive with three arrays:

- ``names``  ``(C,)`` unicode: the character names, in the job's character order;
- ``frames`` ``(N,)`` int32: which output frames the masks belong to (all frames of a still;
  at most ``MAX_MASK_FRAMES`` evenly spaced frames of a clip, first and last included);
- ``masks``  ``(N, C, H, W)`` bool: the region of each character at output resolution.

Files that cinekit did not render have no masks file: their region is the whole frame, or a
mask image the user gives (white = region, resized to the output when needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cinekit.errors import UserError

MAX_MASK_FRAMES = 16
MASKS_SUFFIX = ".masks.npz"


def output_stem(output: Path | str) -> Path:
    """``renders/ep01/s020.mp4`` -> ``renders/ep01/s020`` (a PNG-sequence folder is its own stem)."""
    output = Path(output)
    if output.is_dir() or not output.suffix:
        return output
    return output.with_suffix("")


def masks_path(output: Path | str) -> Path:
    """The masks file that belongs to an output: ``<stem>.masks.npz``."""
    stem = output_stem(output)
    return stem.with_name(stem.name + MASKS_SUFFIX)


def subsample(n_frames: int, max_frames: int = MAX_MASK_FRAMES) -> np.ndarray:
    """Evenly spaced frame indices ``(min(n, max_frames),)`` including the first and the last."""
    if n_frames <= max_frames:
        return np.arange(n_frames, dtype=np.int32)
    return np.unique(np.linspace(0, n_frames - 1, max_frames).round().astype(np.int32))


def write_masks(output: Path | str, masks: np.ndarray, names: Sequence[str],
                max_frames: int = MAX_MASK_FRAMES, frames: np.ndarray | None = None) -> Path:
    """Write ``RenderResult.masks`` ``(frames, C, H, W)`` bool next to ``output``; return the path.

    ``names``: the characters in the same order (``[c.name for c in job.characters]``).
    Clips keep ``max_frames`` evenly spaced frames. Written atomically. ``frames``: the output
    frames ``masks`` already are (a streaming writer keeps only those), instead of subsampling.
    """
    from cinekit.render.writers import atomic_path

    masks = np.asarray(masks).astype(bool)
    if masks.ndim != 4 or masks.shape[1] != len(names):
        raise ValueError(f"masks must be (frames, {len(names)}, H, W), got {masks.shape}")
    if frames is not None:
        idx, masks = np.asarray(frames, dtype=np.int32), masks
    else:
        idx = subsample(len(masks), max_frames)
        masks = masks[idx]
    path = masks_path(output)
    arrays = {"names": np.array(list(names), dtype=str), "frames": idx, "masks": masks}
    with atomic_path(path, suffix=".npz") as tmp:
        _write_npz(tmp, arrays)
    return path


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but byte-reproducible: zip entries get a fixed date
    (numpy stamps the current time, so two renders of one job would differ)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())


@dataclass(frozen=True)
class MaskSet:
    names: list[str]
    frames: np.ndarray       # (N,) output frame indices
    masks: np.ndarray        # (N, C, H, W) bool

    def character(self, name: str | None) -> np.ndarray:
        """``(N, H, W)`` bool: one character's region, or the union of all when ``name`` is None."""
        if name is None:
            return self.masks.any(axis=1)
        if name not in self.names:
            raise UserError(f"no character {name!r} in this output's masks",
                            hint=f"characters in the shot: {', '.join(self.names) or 'none'}")
        return self.masks[:, self.names.index(name)]


def read_masks(output: Path | str) -> MaskSet | None:
    """The masks written next to ``output``, or None when there is no masks file."""
    path = masks_path(output)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return MaskSet([str(n) for n in data["names"]], data["frames"].astype(np.int64), data["masks"].astype(bool))


def load_mask_image(path: Path | str, size: tuple[int, int]) -> np.ndarray:
    """A user mask image -> ``(H, W)`` bool at ``size`` = (W, H); white (> 127) or opaque = region."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA") and np.asarray(im.getchannel("A")).min() < 255:
            grey = im.getchannel("A")
        else:
            grey = im.convert("L")
        if grey.size != size:
            grey = grey.resize(size, Image.NEAREST)
        mask = np.asarray(grey) > 127
    if not mask.any():
        raise UserError(f"{path}: the mask is empty", hint="white (or opaque) pixels mark the region to score")
    return mask


@dataclass(frozen=True)
class Region:
    """A character's region in sampled frames of an output."""

    frames: np.ndarray       # (N,) output frame indices
    masks: np.ndarray        # (N, H, W) bool
    source: str              # "masks" | "mask file" | "whole frame"

    @property
    def empty(self) -> bool:
        return not self.masks.any()


def character_region(output: Path | str, n_frames: int, size: tuple[int, int], character: str | None = None,
                     mask_file: Path | str | None = None, max_frames: int = MAX_MASK_FRAMES) -> Region:
    """The region of ``character`` in an output of ``n_frames`` frames of ``size`` = (W, H).

    Priority: a user ``mask_file`` (same mask for every frame), then the ``<id>.masks.npz``
    next to the output (``character`` None = every character), then the whole frame.
    """
    w, h = size
    if mask_file is not None:
        idx = subsample(n_frames, max_frames)
        mask = load_mask_image(mask_file, size)
        return Region(idx, np.broadcast_to(mask, (len(idx), h, w)), "mask file")
    masks = read_masks(output)
    if masks is not None:
        if masks.masks.shape[2:] != (h, w):
            raise UserError(f"{masks_path(output)}: masks are {masks.masks.shape[3]}x{masks.masks.shape[2]}, "
                            f"the output is {w}x{h}", hint="render the shot again to rewrite its masks")
        keep = masks.frames < n_frames
        return Region(masks.frames[keep], masks.character(character)[keep], "masks")
    idx = subsample(n_frames, max_frames)
    return Region(idx, np.ones((len(idx), h, w), bool), "whole frame")


def bbox(mask: np.ndarray, pad: float = 0.05) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of a ``(H, W)`` mask, padded by ``pad`` of its size; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    px, py = round((x1 - x0) * pad), round((y1 - y0) * pad)
    return max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)


def crop(image: np.ndarray, mask: np.ndarray, fill: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """The ``mask`` bounding box of ``image`` ``(H, W, 3)``, pixels outside the mask set to ``fill``."""
    box = bbox(mask)
    if box is None:
        return image
    x0, y0, x1, y1 = box
    out = image[y0:y1, x0:x1, :3].copy()
    out[~mask[y0:y1, x0:x1]] = fill
    return out
