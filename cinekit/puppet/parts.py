"""Cut a figure into body-part layers along its rig, and paint in what the art hides.

A studio cut-out rig (Live2D, Spine, Moho) is a stack of parts, each moving with its bone.
``label_parts`` cuts the reference mask the same way: every figure pixel goes to the bone
region nearest *through the figure* (geodesic distance, so a hand drawn on the hip stays
with its forearm), which puts the cuts at the joints; the forearm and shin regions are then
split at the wrist and ankle into hands and feet. A user label map overrides the cut.

``part_weights`` gives each point of a part its blend of the per-bone transforms: rigid
with its own bone, except in a band on the child's side of the joint with its parent, where
it fades to the parent's blend. The parent side never moves with the child (an arm that
rises does not drag the torso), and both sides agree on the cut, so the seam cannot tear.

``fill_hidden`` gives each part the pixels other parts cover in the reference (inside the
part's convex hull): inpainted from the part's own colours (``cv2.inpaint``) and snapped to
its palette, so a limb that moves away shows body, not a hole.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.graph import MCP_Geometric

from cinekit.pose.skeleton import INDEX
from cinekit.puppet.part_map import PART_COLOURS, PART_NAMES, labels_from_map  # noqa: F401 (re-exported)

SLOTS: tuple[str, ...] = (
    "head", "torso_upper", "torso_lower",
    "right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm",
    "right_thigh", "right_shin", "left_thigh", "left_shin",
)
_SLOT_OF = {"head": "head", "torso": "torso_upper", "right_hand": "right_forearm", "left_hand": "left_forearm",
            "right_foot": "right_shin", "left_foot": "left_shin"}
PARENT: dict[str, str | None] = {
    "torso": None, "head": "torso",
    "right_upper_arm": "torso", "right_forearm": "right_upper_arm", "right_hand": "right_forearm",
    "left_upper_arm": "torso", "left_forearm": "left_upper_arm", "left_hand": "left_forearm",
    "right_thigh": "torso", "right_shin": "right_thigh", "right_foot": "right_shin",
    "left_thigh": "torso", "left_shin": "left_thigh", "left_foot": "left_shin",
}
BONE: dict[str, tuple[str, str]] = {
    "right_upper_arm": ("right_shoulder", "right_elbow"), "right_forearm": ("right_elbow", "right_wrist"),
    "left_upper_arm": ("left_shoulder", "left_elbow"), "left_forearm": ("left_elbow", "left_wrist"),
    "right_thigh": ("right_hip", "right_knee"), "right_shin": ("right_knee", "right_ankle"),
    "left_thigh": ("left_hip", "left_knee"), "left_shin": ("left_knee", "left_ankle"),
}
# The bone region each part is cut from, and where hands and feet split off.
_ENDS = {"right_hand": "right_forearm", "left_hand": "left_forearm",
         "right_foot": "right_shin", "left_foot": "left_shin"}
_GEO_SIDE = 256          # geodesic distances on the mask resized to this longer side
_OUTSIDE_COST = 25.0     # cost of a step outside the figure (vs 1 inside)
_BAND = {"head": 0.12, "upper_arm": 0.22, "forearm": 0.22, "thigh": 0.2, "shin": 0.2}
_MARGIN = 2.0            # px: parts overlap their neighbours by this much, drawn identically


def slot_of(part: str) -> int:
    return SLOTS.index(_SLOT_OF.get(part, part))


def head_axis(rig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rest head bone neck -> head, head top point): the nose when the rig has one, else
    half a spine length up the spine (an AnimatedDrawings rig has no face joints)."""
    neck = rig[INDEX["neck"]]
    hip_mid = 0.5 * (rig[INDEX["right_hip"]] + rig[INDEX["left_hip"]])
    spine = neck - hip_mid
    nose = rig[INDEX["nose"]]
    if np.isfinite(nose).all() and np.hypot(*(nose - neck)) > 1e-6:
        return nose - neck, neck + 1.5 * (nose - neck)
    d = spine / max(float(np.hypot(*spine)), 1e-6) * 0.5 * float(np.hypot(*spine))
    return d, neck + d


def _seeds(rig: np.ndarray) -> dict[str, dict]:
    """Seed lines (and the torso's polygon) of each bone region."""
    j = lambda n: rig[INDEX[n]]  # noqa: E731
    hip_mid = 0.5 * (j("right_hip") + j("left_hip"))
    _, head_top = head_axis(rig)
    sh_mid = 0.5 * (j("right_shoulder") + j("left_shoulder"))
    out = {
        # The torso starts at the shoulder line: an AnimatedDrawings "neck" sits in the head.
        "torso": {"lines": [(sh_mid, hip_mid), (j("right_shoulder"), j("left_shoulder")),
                            (hip_mid, j("right_hip")), (hip_mid, j("left_hip"))],
                  "poly": np.array([j("right_shoulder"), j("left_shoulder"), j("left_hip"), j("right_hip")])},
        "head": {"lines": [(j("neck"), head_top)]},
    }
    for part, (a, b) in BONE.items():
        out[part] = {"lines": [(j(a), j(b))]}
    return out


def limb_half_width(mask: np.ndarray, a: np.ndarray, b: np.ndarray, rgb: np.ndarray | None = None) -> float:
    """Half the width of the limb along bone ``a -> b`` (pixels): at points along the middle
    of the bone, the distance to the background on whichever side meets it (the smaller when
    both do). A side that runs on into the figure (an arm held against the body, a hat brim
    over the shoulder) says nothing; where neither side meets the background (a forearm drawn
    across the chest) the distance to the first strong change of colour from the bone's own
    (``rgb`` (H, W, 3), when given) stands in. Median over the points that measured; 0 when
    none did. Searches a third of the bone's length."""
    d = b - a
    length = float(np.hypot(*d))
    if length < 2:
        return 0.0
    n = np.array([-d[1], d[0]]) / length
    h, w = mask.shape
    steps = np.arange(1, int(length / 3) + 1)
    out = []
    for t in np.linspace(0.25, 0.75, 9):
        centre = a + t * d
        sides, edges = [], []
        for sign in (1.0, -1.0):
            ij = np.round(centre + sign * steps[:, None] * n).astype(int)
            inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
            hit = np.zeros(len(steps), bool)
            hit[inside] = mask[ij[inside, 1], ij[inside, 0]]
            if not hit.all():
                sides.append(float(steps[np.argmin(hit)]))
            elif rgb is not None:
                c = np.round(centre).astype(int)
                if 0 <= c[0] < w and 0 <= c[1] < h:
                    own = rgb[c[1], c[0]].astype(int)
                    change = np.abs(rgb[ij[:, 1], ij[:, 0]].astype(int) - own).max(axis=-1) > 60
                    if change.any():
                        edges.append(float(steps[np.argmax(change)]))
        if sides:
            out.append(min(sides))
        elif len(edges) == 2:
            out.append(min(edges))
    return float(np.median(out)) if out else 0.0


def label_parts(mask: np.ndarray, rig: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
    """Part index (into ``PART_NAMES``) of every pixel ``(H, W)`` int8; -1 outside ``mask``.

    A limb's seed is its bone drawn as thick as most of the limb's half-width
    (``limb_half_width``): art with the arms against the body (a real costume reference)
    otherwise gives the inner half of each sleeve to the torso, which is nearer through the
    figure than the bone in the sleeve's middle; that half then stays on the torso as a strip
    when the arm rises."""
    h, w = mask.shape
    f = min(1.0, _GEO_SIDE / max(h, w))
    sh, sw = max(2, int(round(h * f))), max(2, int(round(w * f)))
    small = cv2.resize(mask.astype(np.uint8) * 255, (sw, sh), interpolation=cv2.INTER_AREA) > 64
    costs = np.where(small, 1.0, _OUTSIDE_COST)
    to_small = lambda p: (np.asarray(p, float) + 0.5) * (sw / w, sh / h) - 0.5  # noqa: E731
    seeds = _seeds(rig)
    canvases = {}
    for name, s in seeds.items():
        canvas = np.zeros((sh, sw), np.uint8)
        thick = 1
        if name in BONE:
            a, b = (rig[INDEX[j]] for j in BONE[name])
            thick = max(1, int(round(2 * 0.8 * limb_half_width(mask, a, b, rgb) * f)))
        for a, b in s["lines"]:
            a, b = np.round(to_small(a)).astype(int), np.round(to_small(b)).astype(int)
            cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, thick)
        if "poly" in s:
            cv2.fillPoly(canvas, [np.round(to_small(s["poly"])).astype(np.int32)], 1)
        canvases[name] = canvas
    # An arm drawn across the body (a forearm over the chest) is the arm's, not the torso
    # polygon's: where an arm's seed lies inside the torso's, the arm keeps it.
    for name in ("right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm"):
        canvases["torso"][canvases[name] > 0] = 0
    dist = np.empty((len(seeds), sh, sw))
    for r, canvas in enumerate(canvases.values()):
        starts = [tuple(p) for p in np.argwhere(canvas > 0)]
        dist[r], _ = MCP_Geometric(costs, fully_connected=True).find_costs(starts)
    near = dist.argmin(axis=0).astype(np.uint8)
    names = list(seeds)
    lab_small = np.array([PART_NAMES.index(n) for n in names], np.int8)[near]
    labels = cv2.resize(lab_small, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int8)
    # Hands and feet: the forearm / shin region past the wrist / ankle.
    ys, xs = np.mgrid[0:h, 0:w]
    for end, bone in _ENDS.items():
        a, b = (rig[INDEX[n]] for n in BONE[bone])
        d = b - a
        t = ((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / max(float(d @ d), 1e-6)
        labels[(labels == PART_NAMES.index(bone)) & (t > 1.0)] = PART_NAMES.index(end)
    labels[~mask] = -1
    return labels


def fill_unlabelled(labels: np.ndarray, auto: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Figure pixels a user map leaves unlabelled take the automatic cut's label."""
    out = labels.copy()
    gap = (out < 0) & mask
    out[gap] = auto[gap]
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class Weights:
    """Per-point blend of the ``SLOTS`` transforms, for points of a given part."""

    def __init__(self, labels: np.ndarray, rig: np.ndarray):
        self.rig = rig
        self.shape = labels.shape
        self._dist: dict[str, np.ndarray] = {}
        for part, parent in PARENT.items():
            if parent is not None and slot_of(part) != slot_of(parent):
                outside = (labels != PART_NAMES.index(parent)).astype(np.uint8)
                self._dist[part] = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
        j = lambda n: rig[INDEX[n]]  # noqa: E731
        self.neck = j("neck")
        self.hip_mid = 0.5 * (j("right_hip") + j("left_hip"))
        spine = self.hip_mid - self.neck
        self.spine2 = max(float(spine @ spine), 1e-6)
        sh_mid = 0.5 * (j("right_shoulder") + j("left_shoulder"))
        self.t0 = float(np.clip(((sh_mid - self.neck) @ spine) / self.spine2, 0.0, 0.8))
        head_dir, _ = head_axis(rig)
        self.lengths = {p: float(np.hypot(*(j(b) - j(a)))) for p, (a, b) in BONE.items()}
        self.lengths["head"] = float(np.hypot(*head_dir))

    def torso(self, pts: np.ndarray) -> np.ndarray:
        """The torso's blend of its upper and lower frames along the spine ``(P, len(SLOTS))``:
        all upper down to the shoulder line, all lower at the hips, a smooth waist between."""
        t = ((pts - self.neck) @ (self.hip_mid - self.neck)) / self.spine2
        # The waist: the middle 40 % between the shoulder line and the hips (a narrower
        # blend keeps more of the torso in its two rigid cores, which draw fastest).
        t = _smoothstep(((t - self.t0) / (1.0 - self.t0) - 0.35) / 0.4)
        w = np.zeros((len(pts), len(SLOTS)))
        w[:, 1], w[:, 2] = 1 - t, t
        return w

    def __call__(self, part: str, pts: np.ndarray) -> np.ndarray:
        """Weights ``(P, len(SLOTS))`` (rows sum to 1) of points ``pts`` ``(P, 2)`` of ``part``."""
        pts = np.asarray(pts, dtype=np.float64)
        if part == "torso":
            return self.torso(pts)
        parent = PARENT[part]
        if slot_of(part) == slot_of(parent):      # a hand or foot rides on its bone
            return self(parent, pts)
        h, w = self.shape
        ij = np.clip(np.round(pts).astype(int), 0, [w - 1, h - 1])
        d = self._dist[part][ij[:, 1], ij[:, 0]]
        kind = "head" if part == "head" else part.split("_", 1)[1]
        band = max(3.0, _BAND[kind] * self.lengths[part])
        b = _smoothstep((d - _MARGIN) / band)[:, None]
        # Nearly rigid is rigid: more triangles join a core (one affine warp) and the band
        # shrinks; the mesh stays one piece, so this moves points inside the band by at most
        # 3 % of the joint's turn, and opens no seam.
        b = np.where(b < 0.03, 0.0, np.where(b > 0.97, 1.0, b))
        own = np.zeros((len(pts), len(SLOTS)))
        own[:, slot_of(part)] = 1.0
        return (1 - b) * self(parent, pts) + b * own


def hidden_region(labels: np.ndarray, part: int, occluders: list[int]) -> np.ndarray:
    """Pixels ``(H, W)`` bool of the ``occluders`` (the parts drawn over ``part``) inside
    ``part``'s convex hull: what they hide of it in the reference."""
    own = labels == part
    if not own.any() or not occluders:
        return np.zeros(labels.shape, bool)
    pts = cv2.findNonZero(own.astype(np.uint8))
    hull = np.zeros(labels.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
    return (hull > 0) & np.isin(labels, occluders)


def fill_hidden(rgb: np.ndarray, own: np.ndarray, hidden: np.ndarray, k: int = 6) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` uint8 with the ``hidden`` pixels painted from the ``own`` ones:
    ``cv2.inpaint`` (Telea) then each painted pixel snapped to the nearest of the ``own``
    pixels' ``k`` main colours (k-means), so flat-colour art stays flat, not a smear."""
    out = rgb.copy()
    if not hidden.any() or not own.any():
        return out
    ys, xs = np.nonzero(own | hidden)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    todo = (~own[y0:y1, x0:x1]).astype(np.uint8)
    painted = cv2.inpaint(crop, todo, 3, cv2.INPAINT_TELEA)
    px = crop[own[y0:y1, x0:x1]].astype(np.float32)
    if len(px) > 4000:
        px = px[np.linspace(0, len(px) - 1, 4000).astype(int)]
    k = max(1, min(k, len(px)))
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)                     # k-means++ seeding: same art, same palette
    _, _, centres = cv2.kmeans(px, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    hid = hidden[y0:y1, x0:x1]
    fill = painted[hid].astype(np.float32)
    nearest = ((fill[:, None, :] - centres[None]) ** 2).sum(axis=-1).argmin(axis=1)
    region = out[y0:y1, x0:x1]
    region[hid] = np.clip(centres[nearest] + 0.5, 0, 255).astype(np.uint8)
    return out
