"""Rendered OpenPose/DWPose skeleton video -> COCO-18 ``Motion``, by colour, without weights.

OpenPose-style renderers draw body limb ``i`` of ``skeleton.LIMBS`` as a filled ellipse in
``0.6 * COLORS[i]`` between its two joints, then each joint as a small disc in
``COLORS[j]``; hands (rainbow lines, blue dots) and face (white dots) use other colours.
Per frame: classify lit pixels to the nearest of those colours; per limb, fit the principal
axis of its pixels to get two endpoints; orient the limbs down the kinematic tree from the
neck (where the limbs touching the neck agree); snap each joint to its disc when visible.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from cinekit.pose.motion import Motion, MotionFormatError
from cinekit.pose.skeleton import COLORS, LIMBS, N_JOINTS

LIMB_RGB = np.array(COLORS[: len(LIMBS)], dtype=np.float32) * 0.6  # (17, 3)
JOINT_RGB = np.array(COLORS, dtype=np.float32)  # (18, 3)
# Colours of what else a DWPose render holds: hand edges (HSV rainbow), hand dots, face dots.
OTHER_RGB = np.array(
    [[255 * c for c in colorsys.hsv_to_rgb(k / 20.0, 1.0, 1.0)] for k in range(20)]
    + [[0, 0, 255], [255, 255, 255]],
    dtype=np.float32,
)
_PALETTE = np.concatenate([LIMB_RGB, JOINT_RGB, OTHER_RGB])  # limbs first, then the rest
N_LIMBS = len(LIMBS)
NECK = 1


def classify_pixels(rgb: np.ndarray, tol: float = 40.0, lit: float = 40.0):
    """Label lit pixels of an (H,W,3) RGB frame: returns ``(ys, xs, limb, joint)`` per lit
    pixel, ``limb`` in 0..16 or -1, ``joint`` in 0..17 or -1 (nearest palette colour within
    ``tol``)."""
    img = np.asarray(rgb)
    brightest = np.maximum(np.maximum(img[..., 0], img[..., 1]), img[..., 2])  # faster than max(axis=-1)
    ys, xs = np.nonzero(brightest > lit)
    px = img[ys, xs].astype(np.int32)
    # Classify each distinct colour once (a frame has far fewer colours than lit pixels).
    packed = (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]
    colours, inverse = np.unique(packed, return_inverse=True)
    rgb_u = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1).astype(np.float32)
    d = np.sqrt(((rgb_u[:, None, :] - _PALETTE[None]) ** 2).sum(axis=-1))
    nearest_u = d.argmin(axis=1)
    ok_u = d[np.arange(len(rgb_u)), nearest_u] < tol
    nearest, ok = nearest_u[inverse.reshape(-1)], ok_u[inverse.reshape(-1)]
    limb = np.where(ok & (nearest < N_LIMBS), nearest, -1)
    jn = nearest - N_LIMBS
    joint = np.where(ok & (jn >= 0) & (jn < N_JOINTS), jn, -1)
    return ys, xs, limb, joint


def limb_mask(rgb: np.ndarray, tol: float = 40.0) -> np.ndarray:
    """(H,W) bool: the pixels of a frame drawn in a body-limb colour (hands, face excluded)."""
    ys, xs, limb, _ = classify_pixels(rgb, tol)
    mask = np.zeros(np.asarray(rgb).shape[:2], dtype=bool)
    sel = limb >= 0
    mask[ys[sel], xs[sel]] = True
    return mask


def _person_region(shape, ys, xs, limb, person: int) -> np.ndarray | None:
    """(H,W) bool region of the ``person``-th largest skeleton (limb pixels, dilated)."""
    import cv2

    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    sel = limb >= 0
    mask[ys[sel], xs[sel]] = 1
    k = max(3, int(round(0.03 * max(h, w))) | 1)
    grown = cv2.dilate(mask, np.ones((k, k), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    if n <= 1:
        return None
    areas = np.array([(mask[labels == i]).sum() for i in range(1, n)])
    order = np.argsort(-areas)
    big = [i for i in order if areas[i] >= 0.1 * areas[order[0]]]
    if person >= len(big):
        return None
    return labels == (big[person] + 1)


def _segment(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints (x, y) of the principal axis of pixels ``pts`` (N,2), extended by 2 px at
    each end (the ellipse tips hide under the joint discs)."""
    c = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - c, full_matrices=False)
    u = vt[0]
    s = (pts - c) @ u
    return c + (s.min() - 2.0) * u, c + (s.max() + 2.0) * u


def _limb_candidates(pts: np.ndarray, min_area: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate segments for one limb colour's pixels ``pts`` (N,2) int (x, y): one per
    blob (largest first), pieces lying on a bigger blob's axis merged into it."""
    import cv2

    if len(pts) < min_area:
        return []
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    mask[pts[:, 1] - y0, pts[:, 0] - x0] = 1
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    lab = labels[pts[:, 1] - y0, pts[:, 0] - x0]
    order = [1 + i for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) if stats[1 + i, cv2.CC_STAT_AREA] >= min_area // 2]
    fp = pts.astype(np.float64)
    used: set[int] = set()
    out = []
    for k in order:
        if k in used or stats[k, cv2.CC_STAT_AREA] < min_area:
            continue
        used.add(k)
        keep = lab == k
        p, q = _segment(fp[keep])
        u = (q - p) / max(np.linalg.norm(q - p), 1e-6)
        normal = np.array([-u[1], u[0]])
        for m in order:
            if m in used:
                continue
            off = fp[lab == m] - p
            along = off @ u
            reach = 25.0 + 0.5 * np.linalg.norm(q - p)  # a limb drawn across may hide a stretch
            across = np.abs(off @ normal)
            if (across.mean() < 4.0 and across.max() < 8.0 and along.min() > -reach
                    and along.max() < np.linalg.norm(q - p) + reach):
                keep |= lab == m
                used.add(m)
        if keep.sum() > stats[k, cv2.CC_STAT_AREA]:
            p, q = _segment(fp[keep])
        out.append((p, q))
    return out


def _disc(ys, xs, joint, j: int, near: np.ndarray, radius: float) -> np.ndarray | None:
    """Centre of joint ``j``'s disc (radius 4) within ``radius`` of ``near`` (x, y), if any:
    the centroid of its pixels nearby, re-centred twice on the pixels within 6 px."""
    sel = joint == j
    if not sel.any():
        return None
    pts = np.stack([xs[sel], ys[sel]], axis=1).astype(np.float64)
    centre, r = np.asarray(near, dtype=np.float64), radius
    for _ in range(3):
        close = np.linalg.norm(pts - centre, axis=1) < r
        if close.sum() < 4:
            return None
        centre, r = pts[close].mean(axis=0), 6.0
    return centre


def _meeting_point(segments: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """Least-squares crossing of the lines through ``segments``; None unless >= 2 lines at
    more than ~25 degrees to each other."""
    if len(segments) < 2:
        return None
    a = np.zeros((2, 2))
    b = np.zeros(2)
    for p, q in segments:
        u = q - p
        n = np.linalg.norm(u)
        if n < 1e-6:
            continue
        u = u / n
        m = np.eye(2) - np.outer(u, u)
        a += m
        b += m @ p
    if np.linalg.eigvalsh(a)[0] < 0.1:
        return None
    return np.linalg.solve(a, b)


def pose_from_frame(rgb: np.ndarray, person: int = 0, tol: float = 40.0) -> np.ndarray:
    """One rendered skeleton frame (H,W,3) RGB -> COCO-18 pose (18,2) pixels, NaN = not found."""
    h, w = np.asarray(rgb).shape[:2]
    ys, xs, limb, joint = classify_pixels(rgb, tol)
    pose = np.full((N_JOINTS, 2), np.nan)
    region = _person_region((h, w), ys, xs, limb, person)
    if region is None:
        return pose
    inside = region[ys, xs]
    ys, xs, limb, joint = ys[inside], xs[inside], limb[inside], joint[inside]
    cands: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for i in range(N_LIMBS):
        sel = limb == i
        found = _limb_candidates(np.stack([xs[sel], ys[sel]], axis=1))
        if found:
            cands[i] = found
    if not cands:
        return pose
    votes: dict[int, list[np.ndarray]] = {j: [] for j in range(N_JOINTS)}
    ends: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def disc_score(j: int, p: np.ndarray) -> float:
        d = _disc(ys, xs, joint, j, p, 8.0)
        return 0.0 if d is None else 1.0 / (1.0 + np.linalg.norm(d - p))

    # The neck: the limb end where most limbs touching the neck meet (robust cost).
    neck_limbs = [i for i in cands if NECK in LIMBS[i]]
    if len(neck_limbs) >= 2:
        points = [p for i in neck_limbs for seg in cands[i] for p in seg]

        def cost(c):
            return sum(min(30.0, min(np.linalg.norm(c - p) for seg in cands[i] for p in seg)) for i in neck_limbs)

        votes[NECK].append(min(points, key=cost))
    for i, (a, b) in enumerate(LIMBS):
        if i not in cands:
            continue
        if votes[a]:  # the candidate, and its end, nearest the parent joint
            ref = np.mean(votes[a], axis=0)
            best = min(
                ((np.linalg.norm(e - ref), seg, k) for seg in cands[i] for k, e in enumerate(seg)),
                key=lambda t: t[0],
            )
            seg, k = best[1], best[2]
            pa, pb = seg[k], seg[1 - k]
            if best[0] > 40.0:  # a gap (occlusion) between this limb and its parent joint
                ends[i] = (pa, pb)
                votes[b].append(pb)
                continue
        else:  # parent unknown: the largest blob, oriented by the joint discs at its ends
            p, q = cands[i][0]
            a_is_p = disc_score(a, p) + disc_score(b, q) >= disc_score(a, q) + disc_score(b, p)
            pa, pb = (p, q) if a_is_p else (q, p)
        ends[i] = (pa, pb)
        if a != NECK or len(neck_limbs) < 2:
            votes[a].append(pa)
        votes[b].append(pb)
    for j, vs in votes.items():
        if not vs:
            continue
        est = np.mean(vs, axis=0)
        meet = _meeting_point([ends[i] for i, limb_ij in enumerate(LIMBS) if j in limb_ij and i in ends])
        if meet is not None and np.linalg.norm(meet - est) < 20.0:
            est = meet  # the limbs' axes cross where the joint is, even if its tips are hidden
        disc = _disc(ys, xs, joint, j, est, 12.0)
        pose[j] = est if disc is None else disc
    return pose


def read_frames(path: str | Path):
    """Yield RGB frames (H,W,3) uint8 of a video or GIF, and return its fps via ``fps_of``."""
    p = Path(path)
    if p.suffix.lower() == ".gif":
        import imageio.v3 as iio

        for frame in iio.imiter(p):
            yield np.asarray(frame)[..., :3]
        return
    import cv2

    cap = cv2.VideoCapture(str(p))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame[..., ::-1]
    finally:
        cap.release()


def fps_of(path: str | Path) -> float:
    """Frame rate of a video or GIF (GIF: from the first frame's duration; 10 if unknown)."""
    p = Path(path)
    if p.suffix.lower() == ".gif":
        import imageio.v3 as iio

        meta = iio.immeta(p, index=0)
        ms = float(meta.get("duration") or 0)
        return 1000.0 / ms if ms > 0 else 10.0
    import cv2

    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise MotionFormatError(f"{p}: cannot open video")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    return fps if fps > 0 else 30.0


def load_skeleton_video(path: str | Path, person: int = 0, step: int = 1, clean: bool = True) -> Motion:
    """A rendered skeleton video -> ``Motion`` (pixels). ``person``: 0 = the largest skeleton
    in each frame, 1 = the next, ...; ``step``: read every ``step``-th frame (fps divided);
    ``clean``: drop and re-estimate physically impossible joints and smooth the track
    (``pose.clean.clean_track``: bone-length consistency, One-Euro filter)."""
    p = Path(path)
    fps = fps_of(p) / step
    poses = [pose_from_frame(f, person) for k, f in enumerate(read_frames(p)) if k % step == 0]
    if not poses:
        raise MotionFormatError(f"{p}: no frames could be read")
    track = np.stack(poses)
    if clean:
        from cinekit.pose.clean import clean_track

        track = clean_track(track, fps)
    return Motion(track, fps=fps, source=str(p))
