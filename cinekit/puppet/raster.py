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


def rasterize(dst: np.ndarray, src: np.ndarray, width: int, height: int):
    """Cover the output with triangles ``dst`` ``(T, 3, 2)``; sample positions in ``src`` ``(T, 3, 2)``.

    Returns ``(px, py, sx, sy, tri)``: for every covered output pixel (pixel centres on
    integers), the texture position and the triangle that covers it. Where triangles overlap,
    a pixel is listed once per triangle, in triangle order.
    """
    a, b, c = dst[:, 0], dst[:, 1], dst[:, 2]
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    lo = np.floor(dst.min(axis=1)).astype(np.int64)
    hi = np.ceil(dst.max(axis=1)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    bw, bh = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    ok = (np.abs(det) > 1e-9) & (bw > 0) & (bh > 0)
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0, np.float32), np.zeros(0, np.float32), e
    n = (bw * bh)[idx]
    tri = np.repeat(idx.astype(np.int32), n)
    start = np.repeat((np.cumsum(n) - n).astype(np.int32), n)
    local = np.arange(len(tri), dtype=np.int32) - start
    row, col = np.divmod(local, bw.astype(np.int32)[tri])
    px = lo[tri, 0].astype(np.int32) + col
    py = lo[tri, 1].astype(np.int32) + row

    # Barycentric coordinates as affine functions of (x, y), per triangle.
    inv = 1.0 / np.where(ok, det, 1.0)
    # l1 = ( e2y (x-ax) - e2x (y-ay)) / det ; l2 = (-e1y (x-ax) + e1x (y-ay)) / det
    # Per triangle: l1, l2 = c0 x + c1 y + c2, c3 x + c4 y + c5 (affine in the pixel position).
    c0, c1, c3, c4 = e2[:, 1] * inv, -e2[:, 0] * inv, -e1[:, 1] * inv, e1[:, 0] * inv
    c2 = -(c0 * a[:, 0] + c1 * a[:, 1])
    c5 = -(c3 * a[:, 0] + c4 * a[:, 1])
    coef = np.stack([c0, c1, c2, c3, c4, c5], axis=1)[tri]   # (P, 6) float64: exact at the edges
    x, y = px.astype(np.float64), py.astype(np.float64)
    l1 = coef[:, 0] * x + coef[:, 1] * y + coef[:, 2]
    l2 = coef[:, 3] * x + coef[:, 4] * y + coef[:, 5]
    eps = 1e-6
    inside = (l1 >= -eps) & (l2 >= -eps) & (l1 + l2 <= 1 + eps)
    tri, px, py, l1, l2 = tri[inside], px[inside], py[inside], l1[inside], l2[inside]
    sa, sb, sc = src[tri, 0], src[tri, 1], src[tri, 2]
    sxy = sa + (sb - sa) * l1[:, None] + (sc - sa) * l2[:, None]
    return px, py, sxy[:, 0].astype(np.float32), sxy[:, 1].astype(np.float32), tri


def _over(canvas: np.ndarray, alpha: np.ndarray | None, patch: np.ndarray, x0: int, y0: int,
          coverage: np.ndarray | None) -> None:
    """Composite premultiplied ``patch`` (h, w, 4) uint8 over ``canvas`` (H, W, 3) uint8 at
    ``(x0, y0)`` (Porter-Duff "over"); ``alpha``/``coverage`` (H, W) take the union of its alpha."""
    h, w = patch.shape[:2]
    roi = canvas[y0 : y0 + h, x0 : x0 + w]
    a = patch[..., 3]
    r = roi.astype(np.float32)
    r *= (1.0 - a.astype(np.float32) * (1.0 / 255.0))[..., None]
    r += patch[..., :3]
    r += 0.5
    roi[...] = r
    if alpha is not None:
        aroi = alpha[y0 : y0 + h, x0 : x0 + w]
        np.maximum(aroi, a, out=aroi)
    if coverage is not None:
        croi = coverage[y0 : y0 + h, x0 : x0 + w]
        np.maximum(croi, a, out=croi)


def draw_part(canvas: np.ndarray, alpha: np.ndarray | None, part, transforms: np.ndarray, scale: float,
              coverage: np.ndarray | None = None, timings: dict[str, float] | None = None) -> None:
    """Draw one ``bind.PartLayer`` posed by ``transforms`` ``(len(PARTS), 2, 3)`` over ``canvas``.

    Each rigid core is one ``cv2.warpAffine`` of its texture into its bounding box on the
    frame; the band triangles (blended at the joint) are rasterised and sampled with
    ``cv2.remap``. ``scale`` picks the texture level. ``alpha``/``coverage`` (H, W) uint8,
    when given, accumulate the part's coverage (the character's mask; tests).
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
        px, py, sx, sy, _ = rasterize(dst[tri], src[tri], width, height)
        if px.size:
            x0, x1, y0, y1 = px.min(), px.max(), py.min(), py.max()
            bw, bh = int(x1 - x0 + 1), int(y1 - y0 + 1)
            map_x = np.full((bh, bw), -8.0, np.float32)
            map_y = np.full((bh, bw), -8.0, np.float32)
            map_x[py - y0, px - x0] = sx
            map_y[py - y0, px - x0] = sy
            patch = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(0, 0, 0, 0))
            _over(canvas, alpha, patch, int(x0), int(y0), coverage)
    if timings is not None:
        timings["raster"] = timings.get("raster", 0.0) + clock() - t0
