"""Drawn keys (cinekit.inbetween): check's located errors, the pose fitted back from a drawing,
the key drawings shown exactly at their frames, the flow dissolve between them, the cache key.

Key drawings here are made by the puppet itself from a known pose (so the true pose is known),
some with a painted change the puppet cannot draw (a "hair" patch) to exercise the dissolve.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.project_factory import make_project

SHOT = """\
    shots:
      - {{id: s1, kind: clip, duration: 1.0, engine: puppet, prompt: "{{ann}}", camera: full,
         characters: [{{name: ann, pose: {pose}}}]{keys}}}
    """


def _planner(root: Path, cache_dir: Path | None = None):
    from cinekit.render.cache import FileDigests
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    project = load_project(root)
    return project, Planner(project, files=FileDigests(), cache_dir=cache_dir)


def _draw(project, planner, job, frame: int, pose: np.ndarray) -> np.ndarray:
    """The puppet's frame ``frame`` of ``job`` with character 0 at ``pose`` (uint8 RGB)."""
    from cinekit.inbetween.track import puppet_engine
    from cinekit.render.background import background

    engine = puppet_engine(project, planner.files)
    track = np.array(job.pose)
    track[frame, 0] = pose
    canvas = background(job.background, job.width, job.height)
    engine.render_frame(replace(job, pose=track), frame, [engine.puppet("ann", "front", False)], canvas)
    return canvas


def _job(root: Path, cache_dir: Path | None = None):
    project, planner = _planner(root, cache_dir)
    return project, planner, planner.plan()[0].job


# --------------------------------------------------------------------------- check
def test_check_reports_each_bad_key_where_it_is_written(tmp_path, monkeypatch):
    from cinekit.cli import app

    root = make_project(tmp_path / "p", """\
        shots:
          - id: s1
            kind: clip
            duration: 1.0
            prompt: "{ann} {bob}"
            characters: [{name: ann}, {name: bob}]
            keys:
              - {at: 0.5, image: keys/ok.png, character: ann}
              - {at: 0.4, image: keys/ok.png, character: ann}
              - {at: 0.55, image: keys/ok.png, character: ann}
              - {at: 0.8, image: keys/ok.png}
              - {at: 0.9, image: ../../outside.png, character: bob, pose: stnd}
              - {at: 3.0, image: keys/small.png, character: carl}
        """)
    (root / "shots" / "keys").mkdir()
    Image.new("RGB", (256, 192), "white").save(root / "shots" / "keys" / "ok.png")
    Image.new("RGB", (100, 80), "white").save(root / "shots" / "keys" / "small.png")
    Image.new("RGB", (256, 192), "white").save(tmp_path / "outside.png")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1, result.output
    out = result.output
    lines = (root / "shots" / "ep.yaml").read_text().splitlines()

    def at(needle: str, nth: int = 0) -> str:
        rows = [i + 1 for i, line in enumerate(lines) if needle in line]
        return f"ep.yaml:{rows[nth]}:"

    assert "not after the previous key (0.5 s)" in out and at("at: 0.4") in out
    assert "lands on frame 4, as keys[0] does" in out          # 0.55 s at 8 fps -> frame 4
    assert "after the shot's last frame" in out and "key image is 100x80; the shot is 256x192" in out
    assert "'carl' is not one of the shot's characters" in out
    assert "say which character this key draws" in out and "add `character: ann`" in out
    assert "points outside the project folder" in out and "unknown pose 'stnd'" in out
    assert "did you mean 'stand'?" in out
    for needle in ("at: 0.4", "at: 0.55", "at: 3.0", "at: 0.8", "at: 0.9"):
        assert at(needle) in out, (needle, out)
    assert out.count("not after the previous key") == 1      # one misplaced key, one error
    assert "Traceback" not in out


def test_keys_on_a_still_are_refused(tmp_path, monkeypatch):
    from cinekit.cli import app

    root = make_project(tmp_path / "p", """\
        shots:
          - {id: s1, prompt: "{ann}", characters: [{name: ann}], keys: [{at: 0, image: k.png}]}
        """, characters=("ann",))
    Image.new("RGB", (256, 192)).save(root / "shots" / "k.png")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1 and "drawn keys need a clip" in result.output


# --------------------------------------------------------------------------- fit
def test_a_puppet_drawing_is_fitted_back_within_3_percent_of_the_figure(tmp_path):
    """A key drawn by the puppet at a known pose (a_pose turned and bent) on a shot whose own
    track stands: the fit (from the nearest library poses) lands every joint within 3 % of
    the figure's height."""
    from cinekit.inbetween.fit import GROUPS, NAMES, joint_errors, pose_from_params
    from cinekit.inbetween.track import figure_height

    root = make_project(tmp_path / "p", SHOT.format(pose="a_pose", keys=""), characters=("ann",))
    project, planner, job = _job(root)
    p = np.zeros(len(NAMES))
    p[:2] = (6, -3)
    for name, value in dict(turn=0.05, head=0.1, right_upper_arm=0.3, left_forearm=-0.35,
                            right_thigh=0.15, left_shin=-0.2).items():
        p[3 + list(GROUPS).index(name)] = value
    truth = pose_from_params(job.pose[4, 0], p)
    (root / "shots" / "keys").mkdir()
    Image.fromarray(_draw(project, planner, job, 4, truth)).save(root / "shots" / "keys" / "a.png")
    (root / "shots" / "ep.yaml").write_text(textwrap.dedent(
        SHOT.format(pose="stand", keys=", keys: [{at: 0.5, image: keys/a.png}]")))
    project, planner, job = _job(root, tmp_path / "cache")
    fitted = job.pose[4, 0]
    err = joint_errors(fitted, truth) / figure_height(truth)
    assert np.isfinite(err).all()
    assert err.max() <= 0.03, np.round(err, 3)
    assert job.options["keys"][0]["pose"]["fitted_from"] != "track"   # not the standing track it began with
    # one key: the keyed track holds its pose over the whole shot
    assert np.allclose(job.pose[0, 0], fitted)
    # a second run (a re-render plans again) reads the stored fit: no search, same pose
    _, again, job2 = _job(root, tmp_path / "cache")
    assert [f.renders for f in again._key_fits.values()] == [0]
    assert np.array_equal(job2.pose, job.pose, equal_nan=True)


# --------------------------------------------------------------------------- render
def _two_key_project(tmp_path: Path):
    """Keys at 0.0 (a_pose) and 0.875 s (cheer), given as poses; the second drawing has a
    painted patch over the head the puppet does not have."""
    root = make_project(tmp_path / "p", SHOT.format(pose="stand", keys=""), characters=("ann",))
    (root / "shots" / "keys").mkdir()
    keys = ", keys: [{at: 0.0, image: keys/a.png, pose: a_pose}, {at: 0.875, image: keys/b.png, pose: cheer}]"
    for name, pose in (("a", "a_pose"), ("b", "cheer")):
        (root / "shots" / "ep.yaml").write_text(textwrap.dedent(SHOT.format(pose=pose, keys="")))
        project, planner, job = _job(root)
        image = _draw(project, planner, job, 0, job.pose[0, 0])
        if name == "b":
            x, y = job.pose[0, 0, 0].round().astype(int)   # the nose: a patch of "hair" above it
            image[y - 14:y - 4, x - 10:x + 10] = (20, 160, 40)
        Image.fromarray(image).save(root / "shots" / "keys" / f"{name}.png")
    (root / "shots" / "ep.yaml").write_text(textwrap.dedent(SHOT.format(pose="stand", keys=keys)))
    return root


def test_key_frames_are_the_drawings_and_the_change_dissolves_between(tmp_path):
    from types import SimpleNamespace

    from cinekit.engines.puppet import PuppetEngine
    from cinekit.identity.core import IdentityStore

    root = _two_key_project(tmp_path)
    project, planner, job = _job(root)
    assert [k["frame"] for k in job.options["keys"]] == [0, 7]
    rt = SimpleNamespace(project=project, identities=IdentityStore(project.characters), files=planner.files)
    frames = PuppetEngine(rt).render(job).frames
    keys = [np.asarray(Image.open(root / "shots" / "keys" / f"{n}.png").convert("RGB")) for n in "ab"]
    for f, key in zip((0, 7), keys):
        assert np.abs(frames[f].astype(int) - key).mean() <= 1 / 255
    # the painted patch (green) fades in between the keys: absent at 0, whole at 7, partial at 4
    def green(img):
        return ((img[..., 1] > 120) & (img[..., 0] < 90)).sum()
    g = [green(fr) for fr in frames]
    assert g[0] == 0 and g[7] > 150
    plain = job.options["keys"]
    # strength of the patch's colour at frame 4 lies between the two keys' (a dissolve, no pop)
    head = job.pose[4, 0, 0].round().astype(int)
    patch = frames[4][head[1] - 13:head[1] - 5, head[0] - 8:head[0] + 8].astype(float)
    greenness = (patch[..., 1] - patch[..., 0]).mean()
    assert 20 < greenness < 140 - 20, greenness
    assert plain[1]["pose"] == {"given": "cheer"}
    # streaming draws the same pixels
    stream = PuppetEngine(rt).stream(job)
    assert all(np.array_equal(fr.image, frames[i]) for i, fr in enumerate(stream.frames))


def test_the_key_image_is_part_of_the_render_cache_key(tmp_path):
    from cinekit.render.cache import FileDigests, job_key

    root = _two_key_project(tmp_path)
    project, _, job = _job(root)
    before = job_key(project, job, "2", "mp4", FileDigests()).key
    image = np.asarray(Image.open(root / "shots" / "keys" / "b.png")).copy()
    image[0, 0] = (0, 0, 0)
    Image.fromarray(image).save(root / "shots" / "keys" / "b.png")
    project, _, job2 = _job(root)
    assert job_key(project, job2, "2", "mp4", FileDigests()).key != before


# --------------------------------------------------------------------------- blend (pure)
@pytest.mark.parametrize(("frame", "expected"), [
    (0, [(0, 1.0)]), (2, [(0, 1.0)]), (4, [(0, 0.5), (1, 0.5)]), (6, [(1, 1.0)]), (9, [(1, 1.0)])])
def test_neighbour_weights(frame, expected):
    from cinekit.inbetween.blend import neighbours

    got = neighbours(frame, [2, 6])
    assert [(k, pytest.approx(w)) for k, w in expected] == got


def test_dissolve_moves_the_residual_with_the_flow():
    """A residual patch on a textured square follows the square when it moves (flow), rather
    than staying where it was drawn."""
    from cinekit.inbetween.blend import dissolve

    rng = np.random.default_rng(0)
    tex = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    a = np.full((128, 128, 3), 200, np.uint8)
    b = a.copy()
    a[40:80, 30:70] = tex
    b[40:80, 40:80] = tex          # the square moved 10 px right
    residual = np.zeros((128, 128, 3), np.float32)
    residual[55:65, 45:55] = 50.0  # centred on the square in frame a
    out = dissolve(b, [(residual, a, 1.0)]).astype(float) - b
    assert out[55:65, 55:65].mean() > 30      # carried along to the square's new place
    assert abs(out[55:65, 45:50].mean()) < 15


def test_fitting_a_drawing_needs_a_rig_unless_the_pose_is_given(tmp_path, monkeypatch):
    from cinekit.cli import app

    root = make_project(tmp_path / "p", """\
        shots:
          - {id: s1, kind: clip, duration: 1, prompt: "{ann}", characters: [{name: ann}],
             keys: [{at: 0, image: k.png}, {at: 0.5, image: k.png, pose: cheer}]}
        """, characters=("ann",))
    text = (root / "characters" / "ann.yaml").read_text()
    (root / "characters" / "ann.yaml").write_text(text[:text.index("rig:")])
    Image.new("RGB", (256, 192)).save(root / "shots" / "k.png")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 1
    assert "shots[0].keys[0].image: fitting this drawing needs 'ann''s rig" in result.output
    assert "keys[1]" not in result.output
