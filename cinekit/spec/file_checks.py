"""Probe the files a project names the way render will read them, without rendering.

``cinekit check`` promises that what it passes renders (or fails only for runtime reasons), so
it must read the files, not only see that they exist: image headers and sizes (refusing a
decompression bomb by its header, before any pixel is decoded), reference art and masks
decoded, rigs against their art, motion files through the pose readers' own functions, and a
few frames of a skeleton video. Every result is cached per file: a 10,000-shot list that uses
one BVH reads it once.

Each probe returns a value or a ``Finding`` (a message and a hint) that the caller locates at
the YAML key that named the file. Decoders run on hostile bytes, so a probe catches every
exception of the decoder it calls and turns it into a finding (never a traceback).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinekit.errors import UserError

# Refuse an image above PIL's own decompression-bomb threshold by its header (PIL only warns
# between 1x and 2x this and raises above 2x); render decodes whole images into memory.
MAX_IMAGE_PIXELS = 89_478_485
VIDEO_PROBE_FRAMES = 6            # frames of a skeleton video decoded by check (spread over it)


_ACROSS: OrderedDict = OrderedDict()
_ACROSS_SIZE = 64


def across_runs(key: tuple, compute):
    """``compute()`` cached while the files named in ``key`` keep their size, mtime and inode.

    One process may check a project many times (tests, the fuzz campaign, an editor
    integration); an unchanged file need not be decoded again. Results are small (findings,
    sizes, pose tracks), never pixels.
    """
    paths = [p for p in key if isinstance(p, Path)]
    if not paths:
        return compute()  # nothing to tell a changed input by
    try:
        stamp = tuple((st.st_size, st.st_mtime_ns, st.st_ino) for st in (p.stat() for p in paths))
    except (OSError, ValueError):
        return compute()
    full = (key, stamp)
    if full in _ACROSS:
        _ACROSS.move_to_end(full)
        return _ACROSS[full]
    value = compute()
    _ACROSS[full] = value
    if len(_ACROSS) > _ACROSS_SIZE:
        _ACROSS.popitem(last=False)
    return value


@dataclass(frozen=True)
class Finding:
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    rgba: np.ndarray | None = None   # decoded (H, W, 4) uint8 when asked for


@dataclass(frozen=True)
class ReferenceInfo:
    width: int
    height: int


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _not_a_file(path: Path) -> Finding | None:
    if path.is_dir():
        return Finding(f"{path.name} is a folder, not a file", "name the file inside it")
    if not path.is_file():
        return Finding(f"{path.name} is not a regular file")
    if path.stat().st_size == 0:
        return Finding(f"{path.name} is empty (0 bytes)", "the file was not saved completely; export it again")
    return None


def read_image(path: Path, decode: bool = True) -> ImageInfo | Finding:
    """Header (size) and, when ``decode``, the pixels as RGBA; a bomb is refused by its header."""
    from PIL import Image

    bad = _not_a_file(path)
    if bad:
        return bad
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    return Finding(f"image is {width}x{height} ({width * height / 1e6:.0f} Mpx), above the "
                                   f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx limit (a decompression bomb?)",
                                   "use a smaller image (a reference of 2,000 px is plenty)")
                if not decode:
                    return ImageInfo(width, height)
                rgba = np.asarray(im.convert("RGBA")).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return Finding(f"refused as a decompression bomb: {_describe(exc)}", "use a smaller image")
    except Image.UnidentifiedImageError:
        return Finding(f"{path.name} is not an image PIL can read", "save it as PNG, JPEG or WebP")
    except Exception as exc:  # noqa: BLE001 - any decoder failure on a user's file is a finding
        return Finding(f"{path.name} cannot be decoded: {_describe(exc)}",
                       "the file is truncated or damaged; export it again")
    return ImageInfo(width, height, rgba)


def check_reference(image: Path, mask: Path | None) -> tuple[ReferenceInfo | None, list[tuple[str, Finding]]]:
    """A reference as ``identity.core`` loads it: (size, findings keyed 'image' or 'mask')."""
    img = read_image(image)
    if isinstance(img, Finding):
        return None, [("image", img)]
    info = ReferenceInfo(img.width, img.height)
    if mask is not None:
        m = read_image(mask)
        if isinstance(m, Finding):
            return info, [("mask", m)]
        if (m.width, m.height) != (img.width, img.height):
            return info, [("mask", Finding(f"mask is {m.width}x{m.height}, image is {img.width}x{img.height}",
                                           "a reference mask must have the same size as its image"))]
        # As identity.core: the mask's luminance (PIL "L") above 127 is the figure.
        rgb = m.rgba[..., :3].astype(np.int32)
        lum = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) // 1000
        if not (lum > 127).any():
            return info, [("mask", Finding("the mask is all black: it marks no figure",
                                           "white = figure, black = background"))]
        if not (img.rgba[..., 3][lum > 127] > 0).any():
            return info, [("mask", Finding("the mask covers only transparent pixels of the image",
                                           "check that the mask belongs to this image"))]
        return info, []
    alpha = img.rgba[..., 3] > 127
    if alpha.all():
        return info, []  # opaque art: cut from its backdrop automatically (spec.art_checks says how, or why not)
    if not alpha.any():
        return info, [("image", Finding("the reference is fully transparent: there is no figure",
                                        "save the art with the figure opaque"))]
    return info, []


def rig_findings(rig: np.ndarray, extra: dict, width: int, height: int) -> list[tuple[str | None, Finding]]:
    """Rig joints against the art they sit on: finite, inside the image, proportions readable.

    Returns (joint name or None for the whole rig, finding)."""
    from cinekit.pose.retarget import lengths_from_rig
    from cinekit.pose.skeleton import JOINTS

    out: list[tuple[str | None, Finding]] = []
    named = [(JOINTS[i], rig[i]) for i in range(len(JOINTS))] + [(k, np.asarray(v, float)) for k, v in extra.items()]
    for name, xy in named:
        if np.isnan(xy).all():
            continue  # a joint not given
        if not np.isfinite(xy).all():
            out.append((name, Finding(f"joint {name} is not a finite point: {xy.tolist()}")))
        elif not (0 <= xy[0] <= width and 0 <= xy[1] <= height):
            out.append((name, Finding(f"joint {name} at ({xy[0]:.6g}, {xy[1]:.6g}) is outside the "
                                      f"{width}x{height} reference image",
                                      "rig joints are pixels on the first reference image")))
    if out:
        return out
    try:
        lengths_from_rig(rig)
    except ValueError as exc:
        out.append((None, Finding(str(exc),
                                  "give every body joint (neck, shoulders, elbows, wrists, hips, knees, ankles)")))
    return out


def rig_from_file(path: Path) -> tuple[np.ndarray, dict] | Finding:
    """An AnimatedDrawings char_cfg.yaml rig as identity.core.load_rig reads it, checked."""
    from cinekit.identity.core import ANIMATED_DRAWINGS_TO_COCO
    from cinekit.pose.skeleton import INDEX, empty_pose
    from cinekit.spec.yamlfile import YamlSyntaxError, load_yaml

    bad = _not_a_file(path)
    if bad:
        return bad
    try:
        data = load_yaml(path).data
    except YamlSyntaxError as exc:
        return Finding(f"{path.name}:{exc.line}:{exc.col}: {exc.message}", exc.hint)
    except OSError as exc:
        return Finding(f"cannot read {path.name}: {exc.strerror or exc}")
    skeleton = data.get("skeleton") if isinstance(data, dict) else None
    if not isinstance(skeleton, list) or not skeleton:
        return Finding(f"{path.name} has no `skeleton:` list", "an AnimatedDrawings char_cfg.yaml lists joints as "
                       "`skeleton: [{name: neck, loc: [x, y]}, ...]`")
    pose, extra = empty_pose(), {}
    for i, joint in enumerate(skeleton):
        loc = joint.get("loc") if isinstance(joint, dict) else None
        name = joint.get("name") if isinstance(joint, dict) else None
        if not isinstance(name, str) or not (isinstance(loc, list) and len(loc) == 2
                                             and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in loc)):
            return Finding(f"{path.name}: skeleton[{i}] must be {{name: text, loc: [x, y]}}, got {str(joint)[:60]}")
        if name in ANIMATED_DRAWINGS_TO_COCO:
            pose[INDEX[ANIMATED_DRAWINGS_TO_COCO[name]]] = loc
        else:
            extra[name] = (float(loc[0]), float(loc[1]))
    return pose, extra


# --------------------------------------------------------------------------- motion files
def read_motion(source: str, path: Path, view: str, person: int):
    """A motion file through the pose readers (``import_motion``), or a Finding.

    A skeleton video is not decoded whole here (render does that): a few frames spread over
    it go through ``pose_from_frame``; the frame count and rate come from the header.
    """
    from cinekit.pose.motion import Motion

    if source == "video":
        return _probe_skeleton_video(path, person)
    if source == "detect":
        return _probe_media(path)
    from cinekit.pose.motion import import_motion

    try:
        motion = import_motion(path, view=view) if source == "bvh" else import_motion(path, person=person)
    except UserError as exc:  # MotionFormatError included: the readers' typed errors
        return Finding(_describe(exc.message), exc.hint)
    except Exception as exc:  # noqa: BLE001 - an untyped reader error on a hostile file is still the file's fault
        return Finding(f"cannot read this motion file: {type(exc).__name__}: {_describe(exc)}")
    if not isinstance(motion, Motion) or motion.frames == 0:
        return Finding("the motion file has no frames")
    bad = ~np.isfinite(motion.poses).all(axis=(1, 2)) if source == "bvh" else None
    if bad is not None and bad.any():
        return Finding(f"{int(bad.sum())} of {motion.frames} frames have non-numeric (NaN or infinite) values",
                       "the BVH MOTION section must hold finite numbers")
    return motion


def _video_frames(path: Path) -> tuple[int, float] | Finding:
    """(frame count, fps) of a video or GIF from its header."""
    if path.suffix.lower() == ".gif":
        from PIL import Image

        try:
            with Image.open(path) as im:
                if im.format != "GIF":
                    return Finding(f"{path.name} is not a GIF (it is {im.format or 'unknown'})")
                n = getattr(im, "n_frames", 1)
                ms = float(im.info.get("duration") or 0)
        except Exception as exc:  # noqa: BLE001
            return Finding(f"{path.name} cannot be read as a GIF: {_describe(exc)}")
        return n, (1000.0 / ms if ms > 0 else 10.0)
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return Finding(f"{path.name} cannot be opened as a video", "is it a complete .mp4/.webm/.mov file?")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
    finally:
        cap.release()
    if n <= 0:
        return Finding(f"{path.name} has no frames")
    return n, (fps if fps > 0 else 30.0)


def _sample_frames(path: Path, count: int, wanted: list[int]):
    """RGB frames at the ``wanted`` indices (GIF via PIL, video via OpenCV seeking)."""
    if path.suffix.lower() == ".gif":
        from PIL import Image

        with Image.open(path) as im:
            for k in wanted:
                im.seek(k)
                yield np.asarray(im.convert("RGB"))
        return
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        for k in wanted:
            cap.set(cv2.CAP_PROP_POS_FRAMES, k)
            ok, frame = cap.read()
            if ok:
                yield frame[..., ::-1]
    finally:
        cap.release()


def _probe_media(path: Path) -> tuple[int, float] | Finding:
    from cinekit.pose.motion import VIDEO_SUFFIXES

    bad = _not_a_file(path)
    if bad:
        return bad
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _video_frames(path)
    img = read_image(path, decode=False)
    return img if isinstance(img, Finding) else (1, 1.0)


def _probe_skeleton_video(path: Path, person: int):
    from cinekit.pose.motion import Motion
    from cinekit.pose.skeleton import INDEX
    from cinekit.pose.skeleton_video import pose_from_frame

    head = _probe_media(path)
    if isinstance(head, Finding):
        return head
    count, fps = head
    wanted = sorted(set(np.linspace(0, count - 1, min(VIDEO_PROBE_FRAMES, count)).round().astype(int).tolist()))
    try:
        poses = [pose_from_frame(f, person) for f in _sample_frames(path, count, wanted)]
    except Exception as exc:  # noqa: BLE001 - decoder or reader failure on a user's file
        return Finding(f"{path.name} cannot be decoded: {_describe(exc)}")
    if not poses:
        return Finding(f"{path.name}: no frame could be decoded")
    # to_body_space needs a frame with the nose and an ankle
    ankles = [INDEX["right_ankle"], INDEX["left_ankle"]]
    ok = [np.isfinite(p[INDEX["nose"]]).all() and np.isfinite(p[ankles]).all(axis=1).any() for p in poses]
    if not any(ok):
        return Finding(f"no skeleton found in {len(poses)} frames spread over {path.name}",
                       "the video must show an OpenPose-coloured skeleton (e.g. rendered by `cinekit` or an "
                       "OpenPose editor); for footage of a person use `detect:`")
    # A stand-in motion with the file's length: trims, loops and body space are checked on it.
    stand_in = np.repeat(poses[int(np.argmax(ok))][None], count, axis=0)
    return Motion(stand_in, fps=fps, source=str(path))


def motion_track_finding(motion, fps: float, frames: int, start, end, speed, loop) -> Finding | None:
    """Resample + body space exactly as the planner does; a Finding if either refuses."""
    from cinekit.pose.motion import resample, to_body_space

    try:
        poses = resample(motion, fps, start=start, end=end, speed=speed, loop=loop, frames=frames)
        to_body_space(poses)
    except UserError as exc:
        return Finding(exc.message, exc.hint)
    except (ValueError, IndexError, FloatingPointError, ZeroDivisionError, MemoryError) as exc:
        return Finding(_describe(exc))
    return None


def safetensors_finding(path: Path) -> Finding | None:
    """A .safetensors file whose header cannot be read (truncated download, not safetensors)."""
    import json
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return Finding(f"{path.name} is not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or n > min(size - 8, 100 * 2**20):
                return Finding(f"{path.name} is not a readable safetensors file (bad header length)",
                               "the download is incomplete or the file is another format")
            json.loads(f.read(n))
    except (OSError, ValueError) as exc:
        return Finding(f"{path.name} is not a readable safetensors file: {_describe(exc)}")
    return None
