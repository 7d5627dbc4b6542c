"""Draw a textured, deformed triangle mesh: an inverse map per layer, then ``cv2.remap``.

For each layer (a group of parts, drawn back to front) every output pixel covered by one of
its triangles gets the texture coordinate of its barycentric position (vectorised over all
triangles' bounding boxes at once, a ragged enumeration, no Python loop per triangle);
``cv2.remap`` then samples the premultiplied texture bilinearly, and the layer is composited
over the frame with the "over" operator (Porter & Duff 1984).

Antialiasing: the figure's edge comes from the texture's alpha (the reference mask, feathered
by half a pixel) and the mesh reaches a margin beyond it, so triangle edges never show; when
the figure is drawn smaller than its reference, a pre-filtered level of the texture (a
mip level, ``cv2.INTER_AREA``, in steps of sqrt(2)) is sampled instead of the full one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(eq=False)
class Texture:
    """Premultiplied RGBA reference art with lazily built pre-filtered levels."""

    rgba: np.ndarray                      # (H, W, 4) uint8 premultiplied, level 0
    _levels: dict[int, tuple[np.ndarray, float, float]] = field(default_factory=dict)

    @classmethod
    def from_reference(cls, rgba: np.ndarray, mask: np.ndarray) -> "Texture":
        """``rgba`` (H, W, 4) uint8 straight alpha and the figure ``mask`` (H, W) bool."""
        alpha = np.where(mask, rgba[..., 3], 0).astype(np.float32)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5)
        alpha = np.where(cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, alpha, 0)
        a = alpha / 255.0
        pre = np.empty(rgba.shape, np.uint8)
        pre[..., :3] = np.clip(rgba[..., :3].astype(np.float32) * a[..., None] + 0.5, 0, 255)
        pre[..., 3] = np.clip(alpha + 0.5, 0, 255)
        return cls(rgba=pre)

    def level(self, scale: float) -> tuple[np.ndarray, float, float]:
        """(texture, fx, fy) for drawing at ``scale``: the smallest level not below it."""
        k = 0 if scale >= 1 else int(np.floor(-2 * np.log2(max(scale, 1e-3)) + 1e-9))
        k = min(k, 12)
        if k not in self._levels:
            h, w = self.rgba.shape[:2]
            f = 2.0 ** (-k / 2)
            sw, sh = max(1, int(round(w * f))), max(1, int(round(h * f)))
            tex = self.rgba if k == 0 else cv2.resize(self.rgba, (sw, sh), interpolation=cv2.INTER_AREA)
            self._levels[k] = (tex, sw / w, sh / h)
        return self._levels[k]


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


def draw_layers(
    canvas: np.ndarray,
    alpha: np.ndarray | None,
    texture: Texture,
    scale: float,
    src_vertices: np.ndarray,
    dst_vertices: np.ndarray,
    triangles: np.ndarray,
    tri_layer: np.ndarray,
    order: list[int],
    layer_alpha: dict[int, np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> None:
    """Composite the mesh over ``canvas`` ``(H, W, 3)`` float32 (0..255), layers in ``order``.

    ``alpha`` ``(H, W)`` float32 (0..1), when given, accumulates the figure's own coverage.
    ``layer_alpha``, when given, receives each layer's coverage ``(H, W)`` (tests, debugging);
    ``timings`` accumulates seconds spent in "raster" (coverage, inverse maps) and
    "composite" (texture sampling, blending).
    Vertices are ``(N, 2)`` pixels: ``src`` on the reference (level 0), ``dst`` on the output.
    """
    clock = time.perf_counter
    t0 = clock()
    t_comp = 0.0
    height, width = canvas.shape[:2]
    tex, fx, fy = texture.level(scale)
    src_l = (src_vertices + 0.5) * (fx, fy) - 0.5
    px, py, sx, sy, tri = rasterize(dst_vertices[triangles], src_l[triangles], width, height)
    layer_of = tri_layer[tri]
    for layer in order:
        sel = layer_of == layer
        if not sel.any():
            continue
        lx, ly = px[sel], py[sel]
        x0, x1, y0, y1 = lx.min(), lx.max(), ly.min(), ly.max()
        bw, bh = int(x1 - x0 + 1), int(y1 - y0 + 1)
        map_x = np.full((bh, bw), -8.0, np.float32)
        map_y = np.full((bh, bw), -8.0, np.float32)
        map_x[ly - y0, lx - x0] = sx[sel]
        map_y[ly - y0, lx - x0] = sy[sel]
        t1 = clock()
        patch = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0, 0))
        a = patch[..., 3].astype(np.float32) * (1.0 / 255.0)
        roi = canvas[y0 : y1 + 1, x0 : x1 + 1]
        roi *= (1.0 - a)[..., None]
        roi += patch[..., :3]
        if alpha is not None:
            aroi = alpha[y0 : y1 + 1, x0 : x1 + 1]
            aroi *= 1.0 - a
            aroi += a
        if layer_alpha is not None:
            full = layer_alpha.setdefault(layer, np.zeros((height, width), np.float32))
            froi = full[y0 : y1 + 1, x0 : x1 + 1]
            froi *= 1.0 - a
            froi += a
        t_comp += clock() - t1
    if timings is not None:
        timings["raster"] = timings.get("raster", 0.0) + (clock() - t0 - t_comp)
        timings["composite"] = timings.get("composite", 0.0) + t_comp
