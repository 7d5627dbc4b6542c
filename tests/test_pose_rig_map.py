"""Non-humanoid AnimatedDrawings rigs (issue 11): six arms, four legs.

Built in a temporary folder from a real ``char_cfg.yaml`` by adding joints. Without ``map:``
``cinekit check`` refuses them (not ``render``), naming the joints and the map that fixes
it; with ``map:`` the mapped joints play the body and the others follow their parent rigidly.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.pose.rig_map import DEFAULT_MAP, RigMapError, anchor, follow_extras, map_skeleton
from cinekit.pose.skeleton import INDEX
from tests.project_factory import make_project

runner = CliRunner()
CHARS = ["char1", "char2", "char3", "char4"]
SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        characters: [{name: ann, pose: wave}]
    """


def real_skeleton(data_dir, name: str = "char1") -> list[dict]:
    path = data_dir / "animated-drawings" / "characters" / name / "char_cfg.yaml"
    return yaml.safe_load(path.read_text())["skeleton"]


def with_limbs(skeleton: list[dict], kind: str) -> list[dict]:
    """``skeleton`` plus a copy of each arm (``six_arms``: two copies) or of each leg
    (``four_legs``), shifted, parented like the original limb (arms to the torso, legs to the
    root), named ``<joint>_2`` / ``<joint>_3``."""
    out = [dict(j) for j in skeleton]
    chains = {"six_arms": ("shoulder", "elbow", "hand"), "four_legs": ("hip", "knee", "foot")}[kind]
    copies = (2, 3) if kind == "six_arms" else (2,)
    for k in copies:
        for side in ("right", "left"):
            parent = "torso" if kind == "six_arms" else "root"
            for part in chains:
                src = next(j for j in skeleton if j["name"] == f"{side}_{part}")
                name = f"{side}_{part}_{k}"
                dy = 45 * (k - 1) if kind == "six_arms" else 0
                dx = 0 if kind == "six_arms" else (-30 if side == "right" else 30) * (k - 1)
                out.append({"name": name, "loc": [src["loc"][0] + dx, src["loc"][1] + dy], "parent": parent})
                parent = name
    return out


def project_with(tmp_path, skeleton: list[dict], rig_extra: str = "") -> tuple:
    root = make_project(tmp_path / "p", SHOTS)
    (root / "characters" / "refs" / "cfg.yaml").write_text(yaml.safe_dump({"skeleton": skeleton}))
    # The art the rig sits on: as large as the skeleton's drawing, the figure opaque on transparency.
    locs = np.array([j["loc"] for j in skeleton], dtype=float)
    w, h = (int(v) + 40 for v in locs.max(axis=0))
    art = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    lo, hi = locs.min(axis=0) - 20, locs.max(axis=0) + 20
    ImageDraw.Draw(art).rectangle([*lo, *hi], fill=(200, 120, 90, 255))
    art.save(root / "characters" / "refs" / "ann.png")
    (root / "characters" / "ann.yaml").write_text(
        "name: ann\n"
        "references:\n"
        "  - {image: refs/ann.png, view: front}\n"
        "rig:\n"
        "  from: refs/cfg.yaml\n" + rig_extra)
    return root


# ------------------------------------------------------------------ the mapping itself
@pytest.mark.parametrize("name", CHARS)
def test_standard_rigs_map_to_the_body_with_no_extra_limbs(data_dir, name):
    skel = real_skeleton(data_dir, name)
    m = map_skeleton(skel)
    for j in skel:
        if j["name"] in DEFAULT_MAP:
            np.testing.assert_array_equal(m.humanoid[INDEX[DEFAULT_MAP[j["name"]]]], j["loc"])
    assert set(m.extra) == {"root", "hip", "torso"} and m.unmapped == ()


def test_six_arms_without_map_name_every_extra_joint(data_dir):
    m = map_skeleton(with_limbs(real_skeleton(data_dir), "six_arms"))
    assert len(m.unmapped) == 12 and all(n.endswith(("_2", "_3")) for n in m.unmapped)


def test_map_picks_the_body_and_the_rest_follow_their_parents(data_dir):
    skel = with_limbs(real_skeleton(data_dir), "four_legs")
    back = {f"{s}_{p}_2": f"{s}_{c}" for s in ("right", "left")
            for p, c in (("hip", "hip"), ("knee", "knee"), ("foot", "ankle"))}
    m = map_skeleton(skel, back)
    loc = {j["name"]: j["loc"] for j in skel}
    for rig_joint, body in back.items():                       # the mapped legs are the body's
        np.testing.assert_array_equal(m.humanoid[INDEX[body]], loc[rig_joint])
    assert m.unmapped == ()
    # The default legs are now extras: each follows its parent, up to the spine.
    assert m.parents["right_foot"] == "right_knee" and m.parents["right_knee"] == "right_hip"
    assert anchor(m, "right_foot") == "neck"                   # root -> the torso bone


@pytest.mark.parametrize("mapping, key, text", [
    ({"right_hnd": "right_wrist"}, "right_hnd", "did you mean 'right_hand'?"),
    ({"right_hand": "right_wirst"}, "right_hand", "did you mean 'right_wrist'?"),
    ({"left_hand": "right_wrist", "right_hand": "right_wrist"}, "right_hand", "both play 'right_wrist'"),
])
def test_bad_maps_name_the_entry(data_dir, mapping, key, text):
    with pytest.raises(RigMapError) as err:
        map_skeleton(real_skeleton(data_dir), mapping)
    assert err.value.key == key and text in f"{err.value} {err.value.hint}"


def test_extras_follow_a_similarity_of_the_whole_body_exactly(data_dir):
    m = map_skeleton(with_limbs(real_skeleton(data_dir), "six_arms"), {})
    rig = m.humanoid
    a, s, t = np.radians(30.0), 1.5, np.array([40.0, -25.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    track = (rig @ rot.T + t)[None]
    moved = follow_extras(m, track)
    for name, xy in m.extra.items():
        np.testing.assert_allclose(moved[name][0], rot @ np.asarray(xy) + t, atol=1e-9)


def test_an_extra_on_a_forearm_turns_with_it_and_others_stay(data_dir):
    skel = real_skeleton(data_dir) + [{"name": "claw", "loc": [30, 320], "parent": "right_hand"}]
    skel = with_limbs(skel, "six_arms")
    m = map_skeleton(skel, {})
    rig = m.humanoid
    elbow, wrist = rig[INDEX["right_elbow"]], rig[INDEX["right_wrist"]]
    track = rig.copy()
    v = wrist - elbow
    track[INDEX["right_wrist"]] = elbow + np.array([-v[1], v[0]])   # the forearm turned by 90 deg
    moved = {k: v[0] for k, v in follow_extras(m, track[None]).items()}
    off = np.asarray(m.extra["claw"]) - wrist
    np.testing.assert_allclose(moved["claw"], track[INDEX["right_wrist"]] + np.array([-off[1], off[0]]), atol=1e-9)
    for name in ("right_hand_2", "left_hand_3", "torso"):           # on other bones: unmoved
        np.testing.assert_allclose(moved[name], m.extra[name], atol=1e-9)


# ------------------------------------------------------------------ cinekit check, not render
def test_check_refuses_extra_limbs_with_a_located_fix(data_dir, tmp_path, monkeypatch):
    root = project_with(tmp_path, with_limbs(real_skeleton(data_dir), "six_arms"))
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert "characters/ann.yaml:5:" in err and "rig.from:" in err
    for name in ("right_shoulder_2", "right_hand_2", "left_elbow_3", "left_hand_3"):
        assert name in err
    assert "map: {right_shoulder_2: rigid" in err
    assert "Traceback" not in result.output + err


def test_the_suggested_map_passes_check_and_drives_the_body(data_dir, tmp_path, monkeypatch):
    from cinekit.identity.core import load_rig
    from cinekit.spec.project import load_project

    skel = with_limbs(real_skeleton(data_dir), "six_arms")
    extras = [j["name"] for j in skel if j["name"].endswith(("_2", "_3"))]
    rigid = ", ".join(f"{n}: rigid" for n in extras[:-1])            # one left to the default
    root = project_with(tmp_path, skel, f"  map: {{{rigid}, left_hand_3: left_wrist}}\n")
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output + result.stderr
    project = load_project(root)
    spec, path = project.characters["ann"]
    rig, extra = load_rig(spec, path)
    loc = {j["name"]: j["loc"] for j in skel}
    np.testing.assert_array_equal(rig[INDEX["left_wrist"]], loc["left_hand_3"])  # the map's
    np.testing.assert_array_equal(rig[INDEX["right_wrist"]], loc["right_hand"])  # the default
    assert "left_hand" in extra and "right_hand_2" in extra


def test_a_map_entry_that_is_not_a_rig_joint_is_located(data_dir, tmp_path, monkeypatch):
    root = project_with(tmp_path, real_skeleton(data_dir), "  map: {right_hnd: right_wrist}\n")
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "characters/ann.yaml:6:" in result.stderr and "rig.map.right_hnd:" in result.stderr
    assert "did you mean 'right_hand'?" in result.stderr


def test_a_map_needs_a_rig_file(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS)
    spec = root / "characters" / "ann.yaml"
    spec.write_text(spec.read_text() + "  map: {neck: neck}\n")
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "rig.map: map: needs a rig read from a file" in result.stderr
