"""A triangle mesh covering a reference's figure mask.

Vertices are the figure's contours (resampled at a fixed arc length) plus a grid of interior
points; Delaunay (scipy.spatial) triangulates them and triangles that leave the figure are
dropped (their centroid or any edge midpoint/quarter point falls outside the mask).

The mesh covers the mask dilated by ``margin`` pixels, so every figure pixel (and the
bilinear footprint of its edge) lies strictly inside some triangle; texels in the margin are
transparent, so the margin is invisible when drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay


@dataclass(frozen=True)
class Mesh:
    vertices: np.ndarray   # (N, 2) float64 texture pixels (x, y), pixel centres on integers
    triangles: np.ndarray  # (T, 3) int32 counter-clockwise or not; indices into vertices

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)


def _resample_closed(contour: np.ndarray, spacing: float) -> np.ndarray:
    """The corners of a closed pixel contour ``(K, 2)`` (Douglas-Peucker, 0.7 px), long
    sides subdivided so no side is longer than ``spacing``."""
    corners = cv2.approxPolyDP(contour.reshape(-1, 1, 2).astype(np.int32), 0.7, True)[:, 0, :]
    pts = corners.astype(np.float64)
    if len(pts) < 3:
        return pts
    seg = np.diff(np.vstack([pts, pts[:1]]), axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    n_sub = np.maximum(1, np.ceil(seg_len / spacing).astype(int))
    i = np.repeat(np.arange(len(pts)), n_sub)
    t = (np.arange(n_sub.sum()) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)) / n_sub[i]
    return pts[i] + seg[i] * t[:, None]


def build_mesh(mask: np.ndarray, step: float | None = None, margin: int = 2) -> Mesh:
    """Triangulate the figure ``mask`` ``(H, W)`` bool; ``step`` = interior grid spacing in pixels.

    The default step is 1/40 of the figure's larger bounding-box side (a few thousand
    triangles at most), never below 4 px.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the figure mask is empty")
    ys, xs = np.nonzero(mask)
    if step is None:
        step = max(4.0, max(np.ptp(xs) + 1, np.ptp(ys) + 1) / 40.0)
    k = 2 * margin + 1
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # Pad so contours of a figure touching the border still close around it.
    pad = 2
    grown_p = np.pad(grown, pad)
    contours, _ = cv2.findContours(grown_p, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    boundary = [_resample_closed(c[:, 0, :] - pad, step / 3.0) for c in contours if len(c) >= 3]
    boundary_pts = np.vstack(boundary) if boundary else np.zeros((0, 2))

    # Interior grid, kept away from the boundary so no sliver triangles form there.
    inner = cv2.erode(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)),
                      iterations=max(1, int(step * 0.4)))
    h, w = mask.shape
    gx = np.arange(xs.min() % step, w, step)
    gy = np.arange(ys.min() % step, h, step)
    gxx, gyy = np.meshgrid(gx, gy)
    grid = np.stack([gxx.ravel(), gyy.ravel()], axis=1)
    gi = np.clip(np.round(grid).astype(int), 0, [w - 1, h - 1])
    grid = grid[inner[gi[:, 1], gi[:, 0]] > 0]

    pts = np.vstack([boundary_pts, grid])
    pts = np.unique(np.round(pts, 3), axis=0)
    tri = Delaunay(pts).simplices.astype(np.int32)

    # Keep triangles lying inside the grown mask: centroid and points along each edge.
    a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
    probes = [(a + b + c) / 3.0]
    for p, q in ((a, b), (b, c), (c, a)):
        for t in (0.25, 0.5, 0.75):
            probes.append(p + (q - p) * t)
    # Probes may round one pixel off the contour polygon: test against one more pixel.
    grown_b = cv2.dilate(grown, np.ones((3, 3), np.uint8)) > 0
    keep = np.ones(len(tri), dtype=bool)
    for probe in probes:
        pi = np.clip(np.round(probe).astype(int), 0, [w - 1, h - 1])
        keep &= grown_b[pi[:, 1], pi[:, 0]]
    # Drop degenerate triangles.
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
    keep &= area > 1e-3
    tri = tri[keep]
    used = np.unique(tri)
    remap = np.full(len(pts), -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    return Mesh(vertices=pts[used], triangles=remap[tri])


def coverage(mesh: Mesh, shape: tuple[int, int]) -> np.ndarray:
    """Pixels ``(H, W)`` bool covered by the mesh's triangles (for tests and debugging)."""
    out = np.zeros(shape, dtype=np.uint8)
    polys = np.round(mesh.vertices[mesh.triangles] * 16).astype(np.int32)
    cv2.fillPoly(out, list(polys), 1, lineType=cv2.LINE_8, shift=4)
    return out > 0
