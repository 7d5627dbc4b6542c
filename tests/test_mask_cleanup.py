"""Figure masks of real-world references (identity.masks): automatic masks from a flat backdrop,
backdrop gaps between limbs dropped, and what `cinekit check` says about it.

Synthetic sheets have an exact ground truth (figure, gaps, a backdrop-coloured patch of the
costume); the real references of ../shared/data/real-refs are made into characters and
rendered through the puppet engine, and the frames are measured.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cinekit.identity.masks import NoBackdropError, figure_mask, to_lab
from cinekit.pose.skeleton import INDEX

PURPLE = (101, 87, 163)


# --------------------------------------------------------------------------- synthetic sheets
def _joints() -> dict[str, tuple[int, int]]:
    return {
        "nose": (120, 55), "neck": (120, 80),
        "right_shoulder": (95, 90), "right_elbow": (60, 140), "right_wrist": (98, 190),
        "left_shoulder": (145, 90), "left_elbow": (180, 140), "left_wrist": (142, 190),
        "right_hip": (108, 195), "right_knee": (100, 255), "right_ankle": (95, 305),
        "left_hip": (132, 195), "left_knee": (140, 255), "left_ankle": (145, 305),
    }


def rig_array() -> np.ndarray:
    rig = np.full((18, 2), np.nan)
    for name, xy in _joints().items():
        rig[INDEX[name]] = xy
    return rig


def sheet(backdrop=PURPLE, gradient: bool = False, shadow: bool = False, seed: int = 0):
    """An opaque 240x330 character sheet: (rgb uint8, figure, gaps between arms and body,
    a backdrop-coloured patch on the chest that a bone crosses, the shadow)."""
    h, w = 330, 240
    rng = np.random.default_rng(seed)
    bg = np.empty((h, w, 3), np.float32)
    bg[:] = backdrop
    if gradient:  # a studio wall: lighter at the top, a darker floor
        bg *= np.linspace(1.0, 0.8, h, dtype=np.float32)[:, None, None]
    j = _joints()
    fig = np.zeros((h, w), np.uint8)
    art = np.zeros((h, w, 3), np.uint8)
    cv2.fillPoly(fig, [np.array([(92, 85), (148, 85), (140, 200), (100, 200)])], 1)
    cv2.fillPoly(art, [np.array([(92, 85), (148, 85), (140, 200), (100, 200)])], (200, 60, 60))
    cv2.line(fig, j["neck"], (120, 86), 1, 12)
    cv2.line(art, j["neck"], (120, 86), (240, 210, 180), 12)
    cv2.circle(fig, (120, 50), 22, 1, -1)
    cv2.circle(art, (120, 50), 22, (240, 210, 180), -1)
    for side, colour in (("right", (60, 90, 200)), ("left", (60, 90, 200))):
        for a, b in ((f"{side}_shoulder", f"{side}_elbow"), (f"{side}_elbow", f"{side}_wrist"),
                     (f"{side}_hip", f"{side}_knee"), (f"{side}_knee", f"{side}_ankle")):
            cv2.line(fig, j[a], j[b], 1, 14)
            cv2.line(art, j[a], j[b], colour, 14)
    fig = fig.astype(bool)
    # The backdrop seen between each arm and the body: inside the triangle shoulder-elbow-wrist.
    gaps = np.zeros((h, w), np.uint8)
    for side in ("right", "left"):
        cv2.fillPoly(gaps, [np.array([j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]])], 1)
    gaps = gaps.astype(bool) & ~fig
    patch = np.zeros((h, w), bool)
    patch[120:160, 112:129] = True          # the spine runs through it: part of the costume
    out = np.where(fig[..., None], art.astype(np.float32), bg)
    out[patch] = np.asarray(backdrop, np.float32)
    shade = np.zeros((h, w), bool)
    if shadow:  # a soft cast shadow on the wall beside the body, touching the arm
        m = np.zeros((h, w), np.float32)
        cv2.ellipse(m, (200, 160), (26, 70), 0, 0, 360, 1.0, -1)
        m = cv2.GaussianBlur(m, (0, 0), 6) * (~fig)
        out *= (1 - 0.22 * m)[..., None]
        shade = m > 0.5
    out += rng.normal(0, 1.5, out.shape).astype(np.float32)
    rgb = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)   # real sheets come as JPEG
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return rgb, fig | patch, gaps, patch, shade


def rgba_of(rgb: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    a = np.full(rgb.shape[:2], 255, np.uint8) if alpha is None else alpha
    return np.dstack([rgb, a])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("backdrop,gradient,shadow", [(PURPLE, False, False), ((236, 236, 232), True, True)],
                         ids=["flat-purple", "white-wall-gradient-shadow"])
def test_auto_mask_cuts_the_figure_and_drops_gaps_between_limbs(backdrop, gradient, shadow):
    rgb, fig, gaps, patch, shade = sheet(backdrop, gradient, shadow)
    result = figure_mask(rgba_of(rgb), rig=rig_array())
    mask = result.mask
    assert result.source == "auto"
    # The figure, plus at most a JPEG-ringing rim: nothing lost, nothing far from it.
    assert (fig & ~mask).sum() < 0.01 * fig.sum()
    far = ~cv2.dilate(fig.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~gaps
    assert (mask & far).sum() < 0.015 * fig.sum()
    assert iou(mask, fig) > 0.8
    # The gaps are gone (but for the ringing at their edges and their narrow tips) ...
    assert (mask & core(gaps)).sum() < 0.15 * core(gaps).sum()
    assert result.dropped_background >= 0.5 * gaps.sum()
    # ... while the costume's own backdrop colour stays, and a cast shadow is backdrop.
    assert (mask & patch).sum() > 0.98 * patch.sum()
    assert (mask & core(shade)).sum() < 0.02 * max(core(shade).sum(), 1)


def core(region: np.ndarray) -> np.ndarray:
    """``region`` without its 2 px rim (where JPEG rings)."""
    return cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def test_without_cleanup_or_without_rig_the_gaps_stay():
    rgb, fig, gaps, _, _ = sheet()
    raw = figure_mask(rgba_of(rgb), rig=rig_array(), cleanup=False)
    assert raw.mask[core(gaps)].all() and raw.dropped_background == 0
    unrigged = figure_mask(rgba_of(rgb))   # cannot tell a gap from a white shirt: counted, kept
    assert unrigged.mask[core(gaps)].all()
    assert unrigged.unsure_background >= 0.5 * gaps.sum()


def test_user_mask_loses_its_gaps_but_keeps_the_costume():
    rgb, fig, gaps, patch, _ = sheet()
    user = cv2.dilate(fig.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) | gaps  # drawn round the arms
    result = figure_mask(rgba_of(rgb), user, rig_array())
    assert result.source == "mask"
    assert (result.mask & core(gaps)).sum() < 0.15 * core(gaps).sum()
    assert (result.mask & patch).sum() > 0.98 * patch.sum()
    assert result.mask.sum() + result.dropped_background == user.sum()   # nothing else is touched


def test_transparent_pixels_inside_a_user_mask_are_dropped():
    rgb, fig, gaps, _, _ = sheet()
    alpha = np.where(fig, 255, 0).astype(np.uint8)
    result = figure_mask(rgba_of(rgb, alpha), fig | gaps, rig_array())
    assert result.dropped_transparent == int(gaps.sum())
    assert not (result.mask & gaps).any()


def test_transparent_art_uses_its_alpha():
    rgb, fig, _, _, _ = sheet()
    alpha = np.where(fig, 255, 0).astype(np.uint8)
    result = figure_mask(rgba_of(rgb, alpha))
    assert result.source == "alpha" and np.array_equal(result.mask, fig)


def test_busy_background_is_refused():
    rng = np.random.default_rng(1)
    noise = cv2.resize(rng.integers(0, 255, (20, 15, 3), dtype=np.uint8), (240, 330), interpolation=cv2.INTER_NEAREST)
    with pytest.raises(NoBackdropError):
        figure_mask(rgba_of(noise))


# --------------------------------------------------------------------------- check + identity hook
def _project(root: Path, rgb: np.ndarray, mask: np.ndarray | None = None, extra_ref: str = "") -> Path:
    """A project with one character ``sheet`` drawn on ``rgb`` (and ``mask``), one still."""
    (root / "characters" / "refs").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "characters" / "refs" / "sheet.png")
    mask_line = ""
    if mask is not None:
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "characters" / "refs" / "sheet_mask.png")
        mask_line = "\n            mask: refs/sheet_mask.png"
    joints = ", ".join(f"{k}: [{x}, {y}]" for k, (x, y) in _joints().items())
    (root / "cinekit.yaml").write_text("output: renders\nengines: {still: previz, clip: previz}\n"
                                       "defaults: {size: [256, 192], fps: 8}\n")
    (root / "characters" / "sheet.yaml").write_text(textwrap.dedent(f"""\
        name: sheet
        references:
          - image: refs/sheet.png{mask_line}{extra_ref}
        rig:
          joints: {{{joints}}}
        """))
    (root / "shots").mkdir()
    (root / "shots" / "ep.yaml").write_text("shots:\n  - id: a\n    prompt: '{sheet}'\n    characters: [{name: sheet}]\n")
    return root


def test_check_says_it_made_a_mask_and_dropped_the_gaps(tmp_path):
    from cinekit.spec.project import load_project

    rgb, fig, gaps, _, _ = sheet()
    project = load_project(_project(tmp_path, rgb))
    texts = [w.format() for w in project.warnings]
    [auto] = [t for t in texts if "cut the figure" in t]
    assert auto.startswith("characters/sheet.yaml:3:12: warning: references[0].image: no mask and no transparency")
    assert re.search(r"the flat #6[45]5[67]a[34] backdrop \(\d[\d,]* px, \d+\.\d % of the image\)", auto), auto
    [dropped] = [t for t in texts if "gaps between limbs" in t]
    assert dropped.startswith("characters/sheet.yaml:3:12: warning: references[0].image: ")
    px = int(dropped.split(": ")[3].split(" px")[0].replace(",", ""))
    assert 0.5 * gaps.sum() <= px <= 1.3 * gaps.sum()
    assert "% of the figure" in dropped and "mask_cleanup: false" in dropped


def test_check_points_at_the_user_mask_and_mask_cleanup_false_silences_it(tmp_path):
    from cinekit.identity.core import load_identity
    from cinekit.spec.project import load_project

    rgb, fig, gaps, _, _ = sheet()
    project = load_project(_project(tmp_path / "a", rgb, fig | gaps))
    [dropped] = [w.format() for w in project.warnings if "gaps between limbs" in w.message]
    assert dropped.startswith("characters/sheet.yaml:4:11: warning: references[0].mask: ")
    assert "inside the mask" in dropped
    # What the engines get: the identity's reference has the gaps cut out of mask and alpha.
    spec, path = project.characters["sheet"]
    ref = load_identity(spec, path).references[0]
    assert ref.mask[core(gaps)].mean() < 0.15 and (ref.rgba[..., 3][core(gaps)] > 0).mean() < 0.15

    kept = load_project(_project(tmp_path / "b", rgb, fig | gaps, "\n            mask_cleanup: false"))
    assert not [w for w in kept.warnings if "gaps between limbs" in w.message]
    spec, path = kept.characters["sheet"]
    assert load_identity(spec, path).references[0].mask[gaps].all()


@pytest.mark.parametrize("backdrop", [PURPLE, (236, 236, 232)], ids=["purple", "white"])
def test_edges_lose_the_old_backdrop(tmp_path, backdrop):
    """Composited on green, the reference the engines get matches the same figure drawn on green
    along its edge (no outline of the old backdrop): Delta E near the JPEG noise of the interior."""
    from cinekit.identity.core import load_identity
    from cinekit.spec.project import load_project

    rgb, *_ = sheet(backdrop)
    ideal, *_ = sheet((0, 160, 0))
    spec, path = load_project(_project(tmp_path, rgb)).characters["sheet"]
    ref = load_identity(spec, path).references[0]
    a = ref.rgba[..., 3:].astype(np.float32) / 255.0
    comp = np.clip(ref.rgba[..., :3] * a + np.float32([0, 160, 0]) * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    d = np.sqrt(((to_lab(comp) - to_lab(ideal)) ** 2).sum(axis=-1))
    ring = ref.mask & ~core(ref.mask)
    inner = core(ref.mask)
    assert d[ring].mean() < 2.0 * d[inner].mean() + 3.0, (d[ring].mean(), d[inner].mean())


def test_no_flat_backdrop_is_a_located_error_not_a_traceback(tmp_path):
    from cinekit.errors import SpecError, UserError
    from cinekit.identity.core import load_identity
    from cinekit.spec.models import CharacterSpec
    from cinekit.spec.project import load_project

    rng = np.random.default_rng(1)
    busy = cv2.resize(rng.integers(0, 255, (20, 15, 3), dtype=np.uint8), (240, 330), interpolation=cv2.INTER_NEAREST)
    root = _project(tmp_path, busy)
    with pytest.raises(SpecError) as info:
        load_project(root)
    [error] = [p.format() for p in info.value.problems if p.severity == "error"]
    assert error.startswith("characters/sheet.yaml:3:12: references[0].image: no mask, no transparent background, "
                            "and no flat backdrop")
    assert "hint: save the art with alpha" in error
    spec = CharacterSpec.model_validate({"name": "sheet", "references": [{"image": "refs/sheet.png"}]})
    with pytest.raises(UserError, match="no flat backdrop"):
        load_identity(spec, root / "characters" / "sheet.yaml")


# --------------------------------------------------------------------------- real references
# Rigs placed by hand on the images (COCO-18 order; "right" = the character's right = viewer's left).
REAL_RIGS = {
    "anyone-2": [[291, 145], [291, 192], [215, 226], [189, 310], [200, 385], [368, 226], [390, 310], [378, 392],
                 [262, 440], [250, 580], [250, 712], [322, 440], [328, 580], [331, 712],
                 [282, 128], [302, 128], [265, 135], [318, 135]],
    "anyone-3": [[365, 112], [365, 182], [282, 196], [283, 335], [314, 468], [436, 196], [442, 335], [488, 470],
                 [342, 418], [327, 625], [287, 815], [418, 418], [422, 625], [424, 815],
                 [350, 98], [380, 98], [333, 105], [395, 105]],
}
# The figure's extent measured by eye on each image: (x0, x1, y0, y1) pixels, and points of
# backdrop enclosed between an arm and the body (anyone-2; anyone-3's gaps open to the side).
REAL_BOXES = {"anyone-2": (172, 402, 60, 767), "anyone-3": (263, 508, 18, 905)}
REAL_GAPS = {"anyone-2": [(220, 330), (350, 330)], "anyone-3": []}


def _real_character(data_dir: Path, name: str):
    from cinekit.spec.models import CharacterSpec

    joints = {n: REAL_RIGS[name][i] for n, i in INDEX.items()}
    spec = CharacterSpec.model_validate({"name": name, "references": [{"image": f"{name}.png"}],
                                         "rig": {"joints": joints}})
    return spec, data_dir / "real-refs" / f"{name}.yaml"


@pytest.mark.parametrize("name", ["anyone-2", "anyone-3"])
def test_real_reference_gets_an_automatic_mask(data_dir, name):
    from cinekit.identity.core import load_identity

    ref = load_identity(*_real_character(data_dir, name)).references[0]
    mask = ref.mask
    h, w = mask.shape
    band = max(4, round(0.02 * min(h, w)))
    assert not mask[:band].any() and not mask[:, :band].any() and not mask[:, -band:].any()
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = REAL_BOXES[name]
    assert abs(xs.min() - x0) <= 12 and abs(xs.max() - x1) <= 12, (xs.min(), xs.max())
    assert abs(ys.min() - y0) <= 12 and abs(ys.max() - y1) <= 12, (ys.min(), ys.max())
    rig = np.asarray(REAL_RIGS[name])
    assert all(mask[y, x] for x, y in rig[:14]), "every body joint lies on the figure"
    for x, y in REAL_GAPS[name]:
        assert not mask[y - 3:y + 4, x - 3:x + 4].any(), f"backdrop enclosed at {(x, y)} is dropped"
    # Solid: no holes but the dropped gaps (a leak into the figure would leave one).
    from scipy import ndimage as ndi

    original = np.asarray(Image.open(data_dir / "real-refs" / f"{name}.png").convert("RGBA"))
    dropped = figure_mask(original, rig=rig.astype(float)).dropped
    holes = ndi.binary_fill_holes(mask) & ~mask
    near_dropped = cv2.dilate(dropped.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # + unmixed edge
    assert (holes & ~near_dropped).sum() <= 50
    assert (holes.sum() > 1000) == bool(REAL_GAPS[name])


def backdrop_blobs(frame: np.ndarray, drawn: np.ndarray, backdrop) -> int:
    """Pixels of the largest backdrop-coloured blob ``drawn`` in ``frame``, by the clean-up's own
    backdrop estimate: its median colour, within half its tolerance (its "surely backdrop")."""
    from scipy import ndimage as ndi

    lab = to_lab(frame)
    ref = cv2.cvtColor(np.float32([[np.asarray(backdrop.rgb) / 255.0]]), cv2.COLOR_RGB2LAB)[0, 0]
    d = np.sqrt(((lab - ref) ** 2).sum(axis=-1))
    inside = cv2.erode(drawn.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    blobs, n = ndi.label(inside & (d < 0.5 * backdrop.tol))
    return int(np.bincount(blobs.ravel())[1:].max()) if n else 0


@pytest.mark.parametrize("name", ["anyone-2", "anyone-3"])
def test_real_reference_animates_without_drawing_its_backdrop(data_dir, name):
    """Rendered through the puppet engine, no frame shows a patch of the reference's backdrop
    inside the figure (the gaps between arms and body would be one per arm, stretched)."""
    from cinekit.engines.puppet import PuppetEngine
    from cinekit.job import JobCharacter
    from cinekit.pose.camera import place
    from tests.puppet_data import bvh_body, make_job, make_runtime

    spec, spec_path = _real_character(data_dir, name)
    runtime = make_runtime({name: (spec, spec_path)})
    identity = runtime.identities.get(name)
    original = np.asarray(Image.open(data_dir / "real-refs" / f"{name}.png").convert("RGBA"))
    backdrop = figure_mask(original, rig=identity.rig).backdrop
    body = bvh_body(identity.rig, "wave_hello", 4)
    pose = place([body], [0.5], None, "full", 512, 512)
    job = make_job([JobCharacter(name=name, spec_path=str(spec_path), position=0.5)], pose, 512, 512,
                   background=(0, 160, 0))
    result = PuppetEngine(runtime).render(job)
    worst = max(backdrop_blobs(result.frames[f], result.masks[f, 0], backdrop) for f in range(job.frames))
    print(name, "largest backdrop blob drawn", worst)
    assert worst <= 40, f"a {worst} px patch of backdrop is drawn inside the figure"
