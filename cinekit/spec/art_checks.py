"""`cinekit check` on a character's reference art: what the figure mask will be, said up front.

The mask every engine uses is made by ``identity.masks`` (the user's mask cleaned up, the
alpha, or an automatic cut-out from a flat backdrop). These checks run the same code on the
same inputs and say, at the reference's line, what it did: an automatic mask (with its area),
backdrop dropped from a mask (area and a fix), or no way to cut the figure out (an error).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIX_HINT = "edit the mask, or set `mask_cleanup: false` on this reference to keep them"


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _read(path: Path, mode: str):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert(mode)).copy()


_NOT_READ = object()


def _rig(spec, path: Path):
    from cinekit.identity.core import load_rig

    try:
        return load_rig(spec, path)[0]
    except Exception:  # noqa: BLE001 - a broken rig file is reported by the rig checks; judge the art without it
        return None


def _allowed(project, path: Path) -> bool:
    if getattr(project, "allow_outside_paths", True):
        return True
    return path.is_relative_to(project.root)


def check_reference_art(check, doc, spec, path: Path) -> None:
    """Add the figure-mask findings of every reference of character ``spec`` (file ``path``)."""
    rig = _NOT_READ
    for i, ref in enumerate(spec.references):
        at = ("references", i)
        image_path = (path.parent / ref.image).resolve()
        if not image_path.is_file() or not _allowed(check.project, image_path):
            continue  # reported as a missing (or forbidden) file already
        try:
            rgba = _read(image_path, "RGBA")
        except OSError as exc:
            check.error(doc, at + ("image",), f"cannot read {ref.image} as an image ({exc})",
                        "save it as PNG, JPEG or WebP")
            continue
        user_mask = None
        if ref.mask:
            mask_path = (path.parent / ref.mask).resolve()
            if not mask_path.is_file() or not _allowed(check.project, mask_path):
                continue
            try:
                grey = _read(mask_path, "L")
            except OSError as exc:
                check.error(doc, at + ("mask",), f"cannot read {ref.mask} as an image ({exc})")
                continue
            if grey.shape != rgba.shape[:2]:
                check.error(doc, at + ("mask",), f"the mask is {grey.shape[1]}x{grey.shape[0]}, "
                            f"the image is {rgba.shape[1]}x{rgba.shape[0]}",
                            "a reference mask must have the same size as its image")
                continue
            user_mask = grey > 127
        if user_mask is None and (rgba[..., 3] <= 127).any():
            continue  # transparent art: its alpha is the mask, nothing to say (and no OpenCV to import)
        from cinekit.identity.masks import NoBackdropError, figure_mask

        if rig is _NOT_READ:
            rig = _rig(spec, path)
        try:
            result = figure_mask(rgba, user_mask, rig if i == 0 else None, ref.mask_cleanup)
        except NoBackdropError as exc:
            check.error(doc, at + ("image",), "no mask, no transparent background, and no flat backdrop to cut "
                        f"the figure from ({exc})",
                        "save the art with alpha, give `mask:` (white = figure), or put the figure on a plain background")
            continue
        _report(check, doc, at, ref, spec.name, result, rgba.shape[0] * rgba.shape[1])


def _report(check, doc, at, ref, name: str, result, image_px: int) -> None:
    where = at + ("mask",) if ref.mask else at + ("image",)
    before = result.area + result.dropped_background + result.dropped_transparent
    if result.source == "auto":
        check.warn(doc, at + ("image",),
                   f"no mask and no transparency: cinekit cut the figure from the flat {_hex(result.backdrop.rgb)} "
                   f"backdrop ({result.area:,} px, {100 * result.area / image_px:.1f} % of the image)",
                   f"see the cut-out on the rig panel of `cinekit sheet {name} --engine puppet`; give `mask:` "
                   "(white = figure) to use your own")
    if result.dropped_background:
        inside = "inside the mask" if ref.mask else "inside the figure"
        check.warn(doc, where,
                   f"{result.dropped_background:,} px ({100 * result.dropped_background / max(before, 1):.1f} % of the "
                   f"figure) in {result.dropped_regions} region(s) {inside} have the backdrop's colour "
                   f"{_hex(result.backdrop.rgb)} (gaps between limbs): dropped from the figure",
                   FIX_HINT)
    if result.dropped_transparent:
        check.warn(doc, where,
                   f"{result.dropped_transparent:,} px ({100 * result.dropped_transparent / max(before, 1):.1f} % of the "
                   "mask) are transparent in the image: dropped from the figure",
                   FIX_HINT)
