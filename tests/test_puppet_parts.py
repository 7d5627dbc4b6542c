"""Parts as layers, on real art: an arm that moves does not drag the torso, and reveals body.

Art: AnimatedDrawings char1 (arms out) and a real reference the project did not draw
(``real-refs/anyone-2.png``: a costumed hero on a flat purple background with his arms
against his body; the test makes its mask by colour distance and gives its rig).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt, label

from cinekit.engines.puppet import PuppetEngine
from cinekit.job import JobCharacter
from cinekit.pose.skeleton import INDEX
from cinekit.puppet.contact_sheet import HERO_RIG  # the hand-marked rig of real-refs/anyone-2.png
from cinekit.spec.models import CharacterSpec
from cinekit.testing.data import shared_data_dir
from tests.puppet_data import DATA, make_job, make_runtime

REAL = shared_data_dir() / "real-refs" / "anyone-2.png"


def hero_mask() -> np.ndarray:
    """The hero's figure: what a flood fill of the flat background from the border (inside
    the image's dark frame line) does not reach, less any pixel of the background colour."""
    rgb = np.ascontiguousarray(np.asarray(Image.open(REAL).convert("RGB"))[..., ::-1])
    h, w = rgb.shape[:2]
    reach = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    for seed in ((8, 8), (w - 9, 8), (8, h - 9), (w - 9, h - 9)):
        cv2.floodFill(rgb, reach, seed, 0, (14, 14, 14), (14, 14, 14), flags)
    # Background enclosed between the arms and the body (or the legs) is background too.
    bg = rgb[8, 8].astype(int)
    fig = (reach[1:-1, 1:-1] == 0) & (np.abs(rgb.astype(int) - bg).max(axis=-1) > 14)
    fig[:6], fig[-6:], fig[:, :6], fig[:, -6:] = False, False, False, False
    lab, n = label(fig)
    big = 1 + np.bincount(lab.ravel())[1:].argmax()
    return lab == big


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = tmp_path_factory.mktemp("parts")
    mask = hero_mask()
    Image.fromarray((mask * 255).astype(np.uint8)).save(out / "hero_mask.png")
    rgb = np.asarray(Image.open(REAL).convert("RGB"))
    # Coordinate art: each pixel's colour says where it was (R: x, G: y), so a frame shows
    # where every drawn pixel came from.
    for name, size in (("hero", rgb.shape[:2]), ("char1", Image.open(DATA / "characters" / "char1" / "texture.png").size[::-1])):
        h, w = size
        ys, xs = np.mgrid[0:h, 0:w]
        code = np.dstack([xs * 255.0 / (w - 1), ys * 255.0 / (h - 1), np.full((h, w), 128.0)])
        Image.fromarray(np.round(code).astype(np.uint8)).save(out / f"{name}_code.png")
    return out


def _spec(name, image, mask, rig):
    return CharacterSpec.model_validate({"name": name, "references": [{"image": str(image), "mask": str(mask)}], "rig": rig})


@pytest.fixture(scope="module")
def runtime(files):
    ad = DATA / "characters" / "char1"
    hero_rig = {"joints": HERO_RIG}
    chars = {
        "hero": _spec("hero", REAL, files / "hero_mask.png", hero_rig),
        "hero_code": _spec("hero_code", files / "hero_code.png", files / "hero_mask.png", hero_rig),
        "char1_code": _spec("char1_code", files / "char1_code.png", ad / "mask.png", {"from": str(ad / "char_cfg.yaml")}),
    }
    return make_runtime({k: (v, ad / "character.yaml") for k, v in chars.items()})


def _poses(runtime, name, turn_deg=90.0, side="right", size=512, scale=0.6):
    """(rest pose, the same with one arm turned ``turn_deg`` about its shoulder) in pixels."""
    rig = runtime.identities.get(name).rig
    rest = (rig - np.nanmean(rig, axis=0)) * scale + (size / 2, size / 2)
    moved = rest.copy()
    sh = rest[INDEX[f"{side}_shoulder"]]
    a = np.radians(turn_deg if side == "right" else -turn_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    for j in (f"{side}_elbow", f"{side}_wrist"):
        moved[INDEX[j]] = sh + rot @ (rest[INDEX[j]] - sh)
    return rest, moved


def _render(engine, name, pose, size=512):
    job = make_job([JobCharacter(name, "x", 0.5)], pose[None, None], size, size, kind="still")
    return engine.render(job).frames[0], engine.part_coverage(job, 0, 0)


@pytest.mark.parametrize("name", ["char1_code", "hero_code"])
def test_moving_one_arm_does_not_drag_the_torso(runtime, name):
    engine = PuppetEngine(runtime)
    rest, moved = _poses(runtime, name)
    ref = runtime.identities.get(name).references[0]
    h, w = ref.mask.shape
    frame_a, cov_a = _render(engine, name, rest)
    frame_b, cov_b = _render(engine, name, moved)
    arm = ("right_upper_arm", "right_forearm", "right_hand")
    over = lambda cov: sum(cov.get(p, 0) for p in arm + ("head", "left_upper_arm", "left_forearm", "left_hand"))  # noqa: E731
    # Torso pixels of the rest frame drawn by the torso alone (nothing over them in either frame).
    torso = (cov_a["torso"] > 0.99) & (over(cov_a) == 0) & (over(cov_b) == 0)
    assert torso.sum() > 2000
    src = lambda f: f[..., :2].astype(float) * ((w - 1) / 255.0, (h - 1) / 255.0)  # noqa: E731
    shift = np.hypot(*(src(frame_a) - src(frame_b))[torso].T) * 0.6     # output pixels
    moved_share = float((shift > 2.0).mean())
    print(f"{name}: {moved_share:.4%} of {torso.sum()} torso pixels moved > 2 px")
    assert moved_share <= 0.01
    # The arm did move: the oracle can see motion.
    arm_a = sum(cov_a[p] for p in arm) > 0.99
    assert (np.hypot(*(src(frame_a) - src(frame_b))[arm_a].T) * 0.6 > 2.0).mean() > 0.5


CROSS_RIG = {
    "nose": [100, 50], "neck": [100, 90],
    "right_shoulder": [70, 100], "right_elbow": [95, 165], "right_wrist": [140, 150],
    "left_shoulder": [130, 100], "left_elbow": [145, 160], "left_wrist": [155, 215],
    "right_hip": [82, 220], "right_knee": [78, 300], "right_ankle": [75, 375],
    "left_hip": [118, 220], "left_knee": [122, 300], "left_ankle": [125, 375],
}
BODY, SLEEVE = (60, 60, 160), (200, 60, 60)


def cross_art(path) -> None:
    """A figure on a transparent canvas with its right forearm drawn across its chest (the
    torso is blue, the limbs red): the forearm hides a band of the torso in the reference."""
    from PIL import ImageDraw

    im = Image.new("RGBA", (200, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    j = {k: tuple(v) for k, v in CROSS_RIG.items()}
    d.polygon([(62, 95), (138, 95), j["left_hip"], j["right_hip"]], fill=BODY + (255,))
    d.ellipse([70, 15, 130, 85], fill=(250, 220, 190, 255))
    for a, b in [("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_elbow"),
                 ("left_elbow", "left_wrist"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
                 ("left_hip", "left_knee"), ("left_knee", "left_ankle")]:
        d.line([j[a], j[b]], fill=SLEEVE + (255,), width=18)
    im.save(path)


def test_a_limb_that_moves_away_reveals_body_not_a_hole(tmp_path):
    """A forearm drawn across the chest hides a band of the torso: raise the arm, and the
    torso layer must be whole where it was (painted in from the body's colours), not open
    onto the background."""
    cross_art(tmp_path / "cross.png")
    spec = CharacterSpec.model_validate({"name": "cross", "references": [{"image": str(tmp_path / "cross.png")}],
                                         "rig": {"joints": CROSS_RIG}})
    rt = make_runtime({"cross": (spec, tmp_path / "cross.yaml")})
    engine = PuppetEngine(rt)
    rest, moved = _poses(rt, "cross", 170.0, "right", size=640, scale=1.4)
    arm = ("right_upper_arm", "right_forearm", "right_hand")
    _, cov_rest = _render(engine, "cross", rest, size=640)
    frame, cov = _render(engine, "cross", moved, size=640)
    arm_rest = sum(cov_rest.get(p, 0) for p in arm) > 0.5
    arm_now = sum(cov.get(p, 0) for p in arm) > 0.5
    drawn = sum(cov.values()) > 0.5
    # Where the forearm lay over the torso (inside the torso's outline at rest: its hull) and
    # has left, the frame must show body. A hole's size is the diameter of the largest disc in it.
    torso_rest = (cov_rest["torso"] > 0.5) | arm_rest & ~(cov_rest["torso"] > 0.5)
    hull = np.zeros(torso_rest.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero((cov_rest["torso"] > 0.5).astype(np.uint8))), 1)
    revealed = arm_rest & ~arm_now & (hull > 0)
    revealed = cv2.erode(revealed.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0   # not the outline
    assert revealed.sum() > 1000          # the arm did lie over the torso and did leave
    hole = revealed & ~drawn
    size = 2 * distance_transform_edt(hole).max()
    print(f"largest hole where the arm was: {size:.1f} px ({hole.sum()} of {revealed.sum()} px uncovered)")
    assert size <= 8.0
    # What shows there is mostly the body's colour (measured 0.86: the painting snaps to the
    # torso layer's own palette, which holds a few sleeve pixels from the other arm's cut).
    shown = frame[revealed & drawn].astype(int)
    assert (np.abs(shown - BODY).max(axis=-1) < 30).mean() > 0.8


def test_a_part_label_map_overrides_the_cut(tmp_path):
    """``parts:`` on a reference: where the map labels a pixel, that label wins; the rest
    keeps the automatic cut. Here a block of char1's chest is declared part of the left
    upper arm, and a raised left arm then carries it along."""
    from cinekit.puppet.parts import PART_COLOURS, PART_NAMES

    ad = DATA / "characters" / "char1"
    auto_rt = make_runtime()
    auto = PuppetEngine(auto_rt).puppet("char1", "front", False).binding.labels
    h, w = auto.shape
    label_map = np.zeros((h, w, 3), np.uint8)
    label_map[250:300, 300:340] = PART_COLOURS["left_upper_arm"]
    Image.fromarray(label_map).save(tmp_path / "parts.png")
    spec = CharacterSpec.model_validate({
        "name": "char1_parts",
        "references": [{"image": str(ad / "texture.png"), "mask": str(ad / "mask.png"), "parts": str(tmp_path / "parts.png")}],
        "rig": {"from": str(ad / "char_cfg.yaml")},
    })
    rt = make_runtime({"char1_parts": (spec, ad / "character.yaml")})
    engine = PuppetEngine(rt)
    labels = engine.puppet("char1_parts", "front", False).binding.labels
    block = np.zeros((h, w), bool)
    block[250:300, 300:340] = True
    block &= auto >= 0
    assert (auto[block] == PART_NAMES.index("torso")).mean() > 0.9        # the cut called it torso
    assert (labels[block] == PART_NAMES.index("left_upper_arm")).all()    # the map wins
    assert (labels[~block] == auto[~block]).all()                          # the rest is the cut
    # And it moves with that arm.
    rest, moved = _poses(rt, "char1_parts", 90.0, "left")
    _, cov_a = _render(engine, "char1_parts", rest)
    _, cov_b = _render(engine, "char1_parts", moved)
    assert np.abs(cov_a["left_upper_arm"] - cov_b["left_upper_arm"]).sum() > 0.3 * cov_a["left_upper_arm"].sum()
