"""The planner's side of drawn keys: read each key, find its pose, rebuild the keyed track.

Each key's pose is given (``pose:`` a library pose, placed like the character) or fitted to
the drawing (``fit.fit_pose`` against the puppet engine's own render, so the fitted pose is the
one the puppet draws). The keyed character's track then becomes the keyframe in-betweening of
those poses (``pose.keyframes.interpolate``: bone angles along the shortest arc, lengths and
neck lerped; held before the first key and after the last). The job records each key in
``options["keys"]`` (frame, project-relative image path, its sha256, the character, how its
pose was found): part of the job record, hence of the render cache key.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cinekit.errors import UserError
from cinekit.inbetween.check import key_frame


def read_key(path: Path, read=None) -> tuple[np.ndarray, str]:
    """(RGB uint8 (H, W, 3), ``sha256:<hex>``) of a key image (alpha composited over white)."""
    from PIL import Image

    data = read(path) if read is not None else Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
    a = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * a + 255.0 * (1 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "sha256:" + hashlib.sha256(data).hexdigest()


class FrameRenderer:
    """The puppet engine's render of one frame of ``job`` at a reduced size, with character
    ``i`` at a candidate pose (the others at their track poses): what the fit compares."""

    def __init__(self, engine, job, frame: int, i: int, long_side: int):
        from cinekit.render.background import background

        s = min(1.0, long_side / max(job.width, job.height))
        w, h = max(8, round(job.width * s)), max(8, round(job.height * s))
        self.sx, self.sy = w / job.width, h / job.height
        self.job = replace(job, width=w, height=h, frames=1, pose=self._scaled(job.pose[frame:frame + 1]))
        self.engine, self.i = engine, i
        self.puppets = [engine.puppet(c.name, c.view, c.mirror) for c in job.characters]
        read = getattr(getattr(engine.runtime, "files", None), "read", None)
        self.base = background(job.background, w, h, read=read)

    def _scaled(self, pose: np.ndarray) -> np.ndarray:
        out = np.array(pose, dtype=np.float64)
        out[..., 0] *= self.sx
        out[..., 1] *= self.sy
        return out

    def size(self) -> tuple[int, int]:
        return self.job.width, self.job.height

    def __call__(self, pose: np.ndarray) -> np.ndarray:
        self.job.pose[0, self.i] = self._scaled(pose)
        canvas = self.base.copy()
        self.engine.render_frame(self.job, 0, self.puppets, canvas)
        return canvas.astype(np.float32) / 255.0


def puppet_engine(project, files):
    """A puppet engine reading the project's characters through the run's input snapshot."""
    from cinekit.engines.puppet import PuppetEngine
    from cinekit.identity.core import IdentityStore

    read = files.read if files is not None else None
    identities = IdentityStore(project.characters, read=read) if read else IdentityStore(project.characters)
    return PuppetEngine(SimpleNamespace(identities=identities, files=files))


def figure_height(pose: np.ndarray) -> float:
    """Standing height (px) of a pixel pose's body: its bone lengths on the rest stance."""
    from cinekit.pose.angles import body_height, bone_lengths

    return float(body_height(np.nan_to_num(bone_lengths(pose), nan=0.0)))


def apply_keys(planner, list_path: Path, shot, job, library_pixels) -> tuple[np.ndarray, list[dict]]:
    """The keyed pose track ``(F, C, 18, 2)`` and the keys' records for ``options["keys"]``.

    ``library_pixels(i, frame, name)`` places library pose ``name`` for character ``i`` at
    ``frame`` (retargeted, mirrored, framed: the planner's own placing).
    """
    from cinekit.inbetween.fit import FIT_SIZE, fit_pose
    from cinekit.pose.keyframes import interpolate, sample_times

    project, files = planner.project, planner.files
    names = [c.name for c in job.characters]
    memo = planner.__dict__.setdefault("_key_fits", {})
    engine = None
    records, poses = [], {}
    for k, key in enumerate(shot.keys):
        path = (list_path.parent / key.image).resolve()
        frame = min(key_frame(key.at, job.fps), job.frames - 1)
        i = names.index(key.character) if key.character else 0
        rec = {"at": key.at, "frame": frame, "image": project.rel(path), "character": names[i]}
        try:
            image, rec["sha256"] = read_key(path, files.read if files is not None else None)
        except (OSError, ValueError) as exc:
            raise UserError(f"{project.rel(list_path)}: shots: {shot.id}: keys[{k}]: cannot read {key.image} ({exc})",
                            hint="run `cinekit check`") from None
        if image.shape[:2] != (job.height, job.width):
            raise UserError(f"{project.rel(list_path)}: shots: {shot.id}: keys[{k}]: key image is "
                            f"{image.shape[1]}x{image.shape[0]}, the shot {job.width}x{job.height}",
                            hint="draw each key over the whole frame, at the shot's size")
        if key.pose is not None:
            pose, rec["pose"] = library_pixels(i, frame, key.pose), {"given": key.pose}
        else:
            track_pose = job.pose[frame, i]
            token = (rec["sha256"], names[i], job.width, job.height, job.pose[frame].tobytes(),
                     str(job.background), tuple(c for c in job.characters))
            if token not in memo:
                memo[token] = _cached_fit(planner, token, names[i])
            if memo[token] is None:
                if engine is None:
                    engine = puppet_engine(project, files)
                    engine.check_inputs(replace(job, pose=job.pose))   # every character needs a rig
                render = FrameRenderer(engine, job, frame, i, FIT_SIZE)
                w, h = render.size()
                import cv2

                target = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
                candidates = [("track", track_pose)] + [(n, library_pixels(i, frame, n)) for n in planner.library
                                                        if np.asarray(planner.library[n]).ndim == 2]
                memo[token] = fit_pose(render, target, candidates, figure_height(track_pose))
                _store_fit(planner, token, names[i], memo[token])
            fit = memo[token]
            pose = fit.pose
            rec["pose"] = {"fitted_from": fit.start, "loss": round(fit.loss, 5)}
        records.append(rec)
        poses.setdefault(i, []).append((frame / job.fps, pose))
    out = np.array(job.pose, dtype=np.float64)
    times = sample_times(job.frames, job.fps)
    for i, keys in poses.items():
        out[:, i] = interpolate(keys, times)
    return out, records


FIT_VERSION = "1"   # bump when the fit's search changes: stored fits are then searched again


def _fit_path(planner, token: tuple, name: str) -> Path | None:
    """``<cache_dir>/keyfits/<key>.json`` for a fit: the key is the key image's digest, the frame's
    track and placing (``token``), and every file of the character (art, mask, rig), by digest."""
    if planner.cache_dir is None or planner.files is None:
        return None
    from cinekit.render.cache import character_files

    spec, spec_path = planner.project.characters[name]
    digests = [planner.files.digest(p) for p in character_files(spec, spec_path)]
    h = hashlib.sha256(repr((FIT_VERSION, token[0], token[1:4], hashlib.sha256(token[4]).hexdigest(),
                             token[5], token[6], digests)).encode())
    return Path(planner.cache_dir) / "keyfits" / f"{h.hexdigest()}.json"


def _cached_fit(planner, token: tuple, name: str):
    """A fit stored by an earlier run (a re-render re-plans: the search is not run again), or None."""
    import json

    from cinekit.inbetween.fit import Fit

    path = _fit_path(planner, token, name)
    try:
        data = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    if not data:
        return None
    return Fit(pose=np.array(data["pose"], dtype=np.float64), loss=data["loss"], start=data["start"],
               renders=0)


def _store_fit(planner, token: tuple, name: str, fit) -> None:
    import json
    import os

    path = _fit_path(planner, token, name)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"pose": np.where(np.isnan(fit.pose), None, fit.pose).tolist(),
                                   "loss": fit.loss, "start": fit.start}))
        os.replace(tmp, path)                 # whole or absent: a reader never sees half a file
    except OSError:
        pass                                  # a read-only cache only costs the search again


def keyed_job(planner, list_path: Path, shot, job, camera):
    """``job`` with the keyed pose track and ``options["keys"]`` (the planner's one call)."""
    from cinekit.pose.camera import mirror, place
    from cinekit.pose.retarget import retarget
    from cinekit.render.plan import position_track

    zoom = camera.get("scale", 1.0) if isinstance(camera, dict) else 1.0
    chars = job.characters

    def library_pixels(i: int, frame: int, name: str) -> np.ndarray:
        ch = shot.characters[i]
        lengths = planner.lengths(ch.name)
        body = retarget(np.asarray(planner.library[name], np.float64)[None], lengths,
                        torso=planner._torsos.get(ch.name))
        if ch.mirror:
            body = mirror(body, 0.0)
        placed = place([body] * len(chars), [c.position for c in chars], [c.scale for c in chars], camera,
                       job.width, job.height)[0, i]
        travel = position_track(ch.pose, chars[i].position, job.frames, job.fps)[frame]
        placed[:, 0] += travel * job.width * zoom
        return placed

    pose, records = apply_keys(planner, list_path, shot, job, library_pixels)
    return replace(job, pose=pose, options={**job.options, "keys": records})
