"""Drawn keys shown at their frames; what the puppet cannot draw dissolves along optical flow.

At a key frame the output is the key drawing, exactly. Between keys the puppet draws the
in-between pose, and the part of each key the puppet does not reproduce — its *residual*
``R = key - puppet(key frame)`` (a new expression, hair, a redrawn hand) — is carried to the
frame along the optical flow from the frame's puppet render to the key frame's (OpenCV DIS),
and cross-dissolved: ``out = P_f + (1 - s) warp(R_a) + s warp(R_b)`` with ``s`` the linear
progress from key ``a`` to key ``b``. So the drawing neither pops in at its frame nor slides
off the body it belongs to; where the puppet matches the drawing, ``R`` is ~0 and the puppet's
own in-between shows. Before the first key and after the last, that key's residual is kept
whole (a drawn change persists). Only areas of change are carried (``drawn_change``): the thin
edge lines a fit a pixel off leaves would ghost beside the limbs; at the key frame itself the
drawing is shown whole, so those lines appear there only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinekit.errors import UserError


def dis_flow(frame: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` float32: for each pixel ``x`` of ``frame``, ``key(x + d) ~ frame(x)`` (DIS)."""
    import cv2

    a = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(key, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) float32 sampled at ``x + flow(x)`` (backward warp, edges replicated)."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def drawn_change(key: np.ndarray, puppet: np.ndarray, threshold: float = 24.0) -> np.ndarray:
    """The residual ``key - puppet`` (H, W, 3) float32 kept only where the drawing really differs.

    A fit a pixel or two off leaves thin lines along every edge of the residual; carried along
    the flow they would ghost beside the limbs. An opening (a disc about 1 % of the frame)
    drops differences thinner than that and keeps areas (a new tuft, a redrawn face); the kept
    mask is grown back and feathered so the dissolve has no hard rim."""
    import cv2

    residual = key.astype(np.float32) - puppet.astype(np.float32)
    size = max(3, round(0.012 * max(key.shape[:2]))) | 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    changed = (np.abs(residual).max(axis=-1) > threshold).astype(np.uint8)
    keep = cv2.dilate(cv2.morphologyEx(changed, cv2.MORPH_OPEN, disc), disc).astype(np.float32)
    keep = cv2.GaussianBlur(keep, (0, 0), size / 3)
    return residual * keep[..., None]


def neighbours(frame: int, key_frames: list[int]) -> list[tuple[int, float]]:
    """``[(key index, weight)]`` of the keys that shape ``frame`` (sorted ``key_frames``)."""
    after = next((k for k, f in enumerate(key_frames) if f >= frame), None)
    if after is None:
        return [(len(key_frames) - 1, 1.0)]
    if key_frames[after] == frame or after == 0:
        return [(after, 1.0)]
    a, b = after - 1, after
    s = (frame - key_frames[a]) / (key_frames[b] - key_frames[a])
    return [(a, 1.0 - s), (b, s)]


def dissolve(puppet: np.ndarray, residuals: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """``puppet`` (H, W, 3) uint8 plus each ``(residual float32, key frame's puppet uint8, weight)``
    carried along the flow from ``puppet`` to that key frame's puppet render -> uint8."""
    out = puppet.astype(np.float32)
    for residual, key_puppet, weight in residuals:
        if weight <= 0:
            continue
        moved = residual if np.array_equal(key_puppet, puppet) else warp(residual, dis_flow(puppet, key_puppet))
        out += weight * moved
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class KeyOverlay:
    """The puppet engine's keys for one job: ``apply(f, canvas)`` after the puppet drew frame ``f``."""

    def __init__(self, engine, job, puppets, base: np.ndarray):
        from cinekit.inbetween.track import read_key

        runtime = engine.runtime
        root = Path(runtime.project.root)
        read = getattr(getattr(runtime, "files", None), "read", None)
        self.frames, self.keys, self.puppet_keys = [], [], []
        for rec in job.options["keys"]:
            image, digest = read_key(root / rec["image"], read)
            if digest != rec["sha256"]:
                raise UserError(f"{rec['image']} changed after the shot was planned", hint="run the command again")
            canvas = base.copy()
            engine.render_frame(job, rec["frame"], puppets, canvas)   # the key frame as the puppet draws it
            self.frames.append(rec["frame"])
            self.keys.append(image)
            self.puppet_keys.append(canvas)
        self.residuals = [drawn_change(k, p) for k, p in zip(self.keys, self.puppet_keys)]

    def apply(self, f: int, canvas: np.ndarray) -> None:
        """Frame ``f`` (H, W, 3) uint8, in place: the key drawing at a key frame, else the dissolve."""
        if f in self.frames:
            canvas[...] = self.keys[self.frames.index(f)]
            return
        parts = [(self.residuals[k], self.puppet_keys[k], w) for k, w in neighbours(f, self.frames)]
        canvas[...] = dissolve(canvas, parts)


def key_overlay(engine, job, puppets, base):
    """A ``KeyOverlay`` when the job has drawn keys, else None."""
    return KeyOverlay(engine, job, puppets, base) if job.options.get("keys") else None
