"""Draw a posed part layer: rigid cores by one affine warp each, joint bands by a mesh.

A core (triangles that all follow one bone) is a single ``cv2.warpAffine`` of its
premultiplied texture into its bounding box on the frame. For a band (the blended triangles
at a joint) every output pixel covered by one of its triangles gets the texture coordinate
of its barycentric position (vectorised over all triangles' bounding boxes at once, a
ragged enumeration, no Python loop per triangle) and ``cv2.remap`` samples the texture
bilinearly. Each piece is composited over the frame, in its bounding box only, with the
"over" operator (Porter & Duff 1984).

Antialiasing: the figure's edge comes from the texture's alpha (the reference mask, feathered
by half a pixel) and the mesh reaches a margin beyond it, so triangle edges never show; when
the figure is drawn smaller than its reference, a pre-filtered level of the texture (a
mip level, ``cv2.INTER_AREA``, in steps of sqrt(2)) is sampled instead of the full one.
"""

from __future__ import annotations

import time

import cv2
import numpy as np


def inverse_maps(dst: np.ndarray, src: np.ndarray, width: int, height: int):
    """Sample positions for the output pixels covered by triangles ``dst`` ``(T, 3, 2)``,
    whose texture positions are ``src`` ``(T, 3, 2)`` (pixel centres on integers).

    Coverage is ``cv2.fillConvexPoly`` of each triangle's number into an id image over their
    joint bounding box (clipped to the frame); each triangle's inverse affine map is solved
    once, and the maps are then computed densely over the box: ``cv2.LUT`` turns the ids into
    the per-pixel coefficients (no ``nonzero``/scatter, which cost more than the arithmetic),
    with the uncovered id 0 mapping to ``0 x + 0 y - 8``. Returns ``(x0, y0, map_x, map_y)``
    with the maps ``(h, w)`` float32 (-8 where no triangle covers: transparent in
    ``cv2.remap``), or None when nothing is on the frame.
    """
    lo = np.floor(dst.reshape(-1, 2).min(axis=0)).astype(int)
    hi = np.ceil(dst.reshape(-1, 2).max(axis=0)).astype(int)
    x0, y0 = max(0, int(lo[0])), max(0, int(lo[1]))
    x1, y1 = min(width - 1, int(hi[0])), min(height - 1, int(hi[1]))
    if x1 < x0 or y1 < y0:
        return None
    # Each triangle's inverse affine in closed form (Cramer's rule on the edge vectors: a
    # batched 3x3 inverse costs more than the rest of the band at these sizes).
    e1, e2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]                 # (T, 2)
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    live = np.nonzero(np.abs(det) > 1e-9)[0]
    n = len(live)
    if n == 0:
        return None
    e1, e2, inv_det = e1[live], e2[live], 1.0 / det[live]
    f1, f2 = src[live, 1] - src[live, 0], src[live, 2] - src[live, 0]      # (n, 2)
    # [e1 e2]^-1 = [[e2y, -e2x], [-e1y, e1x]] / det;  lin = [f1 f2] [e1 e2]^-1
    ia, ib = e2[:, 1] * inv_det, -e2[:, 0] * inv_det
    ic, id_ = -e1[:, 1] * inv_det, e1[:, 0] * inv_det
    lin = np.empty((n, 2, 2))
    lin[:, :, 0] = f1 * ia[:, None] + f2 * ic[:, None]
    lin[:, :, 1] = f1 * ib[:, None] + f2 * id_[:, None]
    p0 = dst[live, 0]
    # Row k + 1 of the table is live[k]'s (a, b, e) for x then y: map = a x + b y + e.
    small = n < 255                                    # ids fit uint8: cv2.LUT does the lookup
    table = np.zeros((256 if small else n + 1, 6), np.float32)
    table[0, 2] = table[0, 5] = -8.0
    coef = table[1 : n + 1].reshape(n, 2, 3)
    coef[:, :, :2] = lin
    coef[:, :, 2] = src[live, 0] - np.einsum("tij,tj->ti", lin, p0)
    ids = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8 if small else np.int32)
    fill = cv2.fillConvexPoly
    for k, p in enumerate(np.round((dst[live] - (x0, y0)) * 16).astype(np.int32), 1):
        fill(ids, p, k, cv2.LINE_8, 4)                 # later triangles win shared edges
    fx = np.arange(x0, x1 + 1, dtype=np.float32)[None, :]
    fy = np.arange(y0, y1 + 1, dtype=np.float32)[:, None]
    maps = []
    for c in (0, 3):                                   # map = a x + b y + e, float32 as before
        a, b, e = ((cv2.LUT(ids, table[:, c + i]) if small else table[:, c + i][ids]) for i in range(3))
        a *= fx
        b *= fy
        a += b
        a += e
        maps.append(a)
    return x0, y0, maps[0], maps[1]


def _over(canvas: np.ndarray, alpha: np.ndarray | None, patch: np.ndarray, x0: int, y0: int,
          coverage: np.ndarray | None) -> None:
    """Composite premultiplied ``patch`` (h, w, 4) uint8 over ``canvas`` (H, W, 3) uint8 at
    ``(x0, y0)`` (Porter-Duff "over": ``src + dst (255 - a) / 255``, OpenCV's saturating
    uint8 arithmetic, in place); ``alpha`` (H, W) bool gets its pixels more than half opaque,
    and ``coverage`` (H, W) uint8 the union (max) of its alpha.

    Only the bounding box of the patch's non-zero alpha is touched: a transparent texel of a
    premultiplied patch is (0, 0, 0, 0) and leaves the canvas exactly as it was (a rotated
    limb's box is mostly empty)."""
    a = cv2.extractChannel(patch, 3)
    bx, by, w, h = cv2.boundingRect(a)
    if w == 0 or h == 0:
        return
    a = a[by : by + h, bx : bx + w]
    patch = patch[by : by + h, bx : bx + w]
    x0, y0 = x0 + bx, y0 + by
    roi = canvas[y0 : y0 + h, x0 : x0 + w]
    cv2.multiply(roi, cv2.cvtColor(cv2.bitwise_not(a), cv2.COLOR_GRAY2RGB), dst=roi, scale=1.0 / 255.0)
    cv2.add(roi, cv2.cvtColor(patch, cv2.COLOR_RGBA2RGB), dst=roi)
    if alpha is not None:
        aroi = alpha[y0 : y0 + h, x0 : x0 + w]
        aroi |= a > 127
    if coverage is not None:
        croi = coverage[y0 : y0 + h, x0 : x0 + w]
        np.maximum(croi, a, out=croi)


def draw_part(canvas: np.ndarray, alpha: np.ndarray | None, part, transforms: np.ndarray, scale: float,
              coverage: np.ndarray | None = None, timings: dict[str, float] | None = None) -> None:
    """Draw one ``bind.PartLayer`` posed by ``transforms`` ``(len(PARTS), 2, 3)`` over ``canvas``.

    Each rigid core is one ``cv2.warpAffine`` of its texture into its bounding box on the
    frame; the band triangles (blended at the joint) are rasterised and sampled with
    ``cv2.remap``. ``scale`` picks the texture level. ``alpha`` (H, W) bool (the character's
    mask) and ``coverage`` (H, W) uint8 (tests), when given, accumulate the part's coverage.
    """
    from cinekit.puppet.deform import deform_vertices

    clock = time.perf_counter
    t0 = clock()
    height, width = canvas.shape[:2]
    for slot, crop in part.cores:
        img, f = crop.level(scale)
        lin = transforms[slot][:, :2] / f
        off = transforms[slot][:, :2] @ np.array([0.5 / f - 0.5 + crop.x0, 0.5 / f - 0.5 + crop.y0]) + transforms[slot][:, 2]
        h, w = img.shape[:2]
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]) @ lin.T + off
        x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, [width, height])
        if x1 <= x0 or y1 <= y0:
            continue
        m = np.hstack([lin, (off - (x0, y0))[:, None]])
        patch = cv2.warpAffine(img, m, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        _over(canvas, alpha, patch, int(x0), int(y0), coverage)
    if len(part.band):
        tex = part.texture
        img, f = tex.level(scale)
        tri = part.triangles[part.band]
        dst = deform_vertices(part, transforms)
        src = (part.vertices - (tex.x0, tex.y0) + 0.5) * f - 0.5
        got = inverse_maps(dst[tri], src[tri], width, height)
        if got is not None:
            x0, y0, map_x, map_y = got
            patch = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(0, 0, 0, 0))
            _over(canvas, alpha, patch, int(x0), int(y0), coverage)
    if timings is not None:
        timings["raster"] = timings.get("raster", 0.0) + clock() - t0
