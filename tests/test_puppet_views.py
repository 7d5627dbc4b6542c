"""Views: a 3-D motion is never shown in a profile the art cannot draw, and ``view: auto``
switches the drawing per frame where the character has art for the body's turn.

Oracles read what reaches the output: the planned track (what every engine draws and the
control maps come from) and the puppet's rendered frames (which drawing's colours show).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cinekit.pose.skeleton import INDEX
from cinekit.testing.data import shared_data_dir
from tests.project_factory import RIG, draw_figure, make_project

BVH = shared_data_dir() / "animated-drawings" / "bvh"
RS, LS = INDEX["right_shoulder"], INDEX["left_shoulder"]


def _plan(root):
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    project = load_project(root)
    return project, Planner(project).plan()[0].job


def _width(pose: np.ndarray) -> np.ndarray:
    return pose[..., LS, 0] - pose[..., RS, 0]


def test_front_art_is_never_projected_to_a_profile(tmp_path):
    """``jumping`` turns the body 73 deg away by its end (a profile from a fixed camera); a
    character with only front art keeps facing the camera, and the job says why."""
    from cinekit.pose.bvh import load_bvh

    shots = "shots:\n  - id: a\n    kind: clip\n    duration: 2\n    fps: 6\n" \
            "    characters: [{name: ann, pose: {bvh: jumping.bvh, start: 3.4}}]\n"
    root = make_project(tmp_path / "p", shots, characters=("ann",))
    shutil.copy(BVH / "jumping.bvh", root / "shots" / "jumping.bvh")
    _, job = _plan(root)
    w = _width(job.pose[:, 0])
    assert w.min() > 0.9 * w.max(), w            # facing the camera throughout
    ch = job.characters[0]
    assert ch.views == () and ch.view == "front"
    assert "front art only" in ch.note and "not a side view" in ch.note
    assert job.to_record()["characters"][0]["note"] == ch.note          # reaches the sidecar
    # The control: the same clip from a fixed camera narrows the shoulders to a profile.
    fixed = load_bvh(BVH / "jumping.bvh", view="front")
    k = np.rint((3.4 + np.arange(job.frames) / 6) * fixed.fps).astype(int)
    wf = _width(fixed.poses[np.clip(k, 0, fixed.frames - 1)])
    assert wf.min() < 0.5 * wf.max()


def _spinning_bvh(path, degrees: float) -> None:
    """``jumping_jacks`` turned about its up axis from 0 to ``degrees`` over the clip."""
    from cinekit.pose.bvh import parse_bvh
    from tests.test_pose_bvh_up_axis import Rotation, _matrices, _set_matrices, write_bvh

    bvh = parse_bvh((BVH / "jumping_jacks.bvh").read_text())
    root = bvh.joints[0]
    n = bvh.motion.shape[0]
    q = Rotation.from_euler("y", np.linspace(0, degrees, n)[:, None], degrees=True).as_matrix()
    _set_matrices(bvh.motion, root, q @ _matrices(bvh, root))
    path.write_text(write_bvh(bvh))


@pytest.fixture
def two_view_project(tmp_path):
    """``ann`` with a red front drawing (the character's rig) and a green side drawing with a
    rig of its own; a clip of a body turning 110 deg."""
    shots = "shots:\n  - id: a\n    kind: clip\n    duration: 2\n    fps: 8\n    size: [256, 256]\n" \
            "    engine: puppet\n    characters: [{name: ann, pose: {bvh: spin.bvh, view: front}}]\n"
    root = make_project(tmp_path / "p", shots, characters=("ann",))
    draw_figure(root / "characters" / "refs" / "ann.png", colour=(220, 30, 30))
    draw_figure(root / "characters" / "refs" / "ann_side.png", colour=(30, 220, 30))
    joints = ", ".join(f"{k}: {v}" for k, v in RIG.items())
    y = root / "characters" / "ann.yaml"
    y.write_text(y.read_text().replace(
        "  - {image: refs/ann.png, view: front}\n",
        "  - {image: refs/ann.png, view: front}\n"
        f"  - {{image: refs/ann_side.png, view: side, rig: {{joints: {{{joints}}}}}}}\n"))
    _spinning_bvh(root / "shots" / "spin.bvh", 110.0)
    return root


def _share(frame: np.ndarray, colour) -> int:
    return int((np.abs(frame.astype(int) - colour).max(axis=-1) < 40).sum())


def test_view_auto_switches_the_drawing_per_frame(two_view_project):
    from cinekit.engines.puppet import PuppetEngine
    from cinekit.runtime import Runtime

    project, job = _plan(two_view_project)
    ch = job.characters[0]
    views = [ch.view_at(f)[0] for f in range(job.frames)]
    assert views[0] == "front" and views[-1] == "side", ch.views
    assert job.depth is not None and np.isfinite(job.depth[:, 0, RS]).all()
    result = PuppetEngine(Runtime.for_project(project)).render(job)
    for f in (0, job.frames - 1):
        red, green = _share(result.frames[f], (220, 30, 30)), _share(result.frames[f], (30, 220, 30))
        if views[f] == "front":
            assert red > 200 and green == 0, (f, red, green)
        else:
            assert green > 200 and red == 0, (f, red, green)
    assert result.info["views"]["ann"]["drawn"]["side"] >= 1


def test_a_reference_rig_is_checked_where_it_is_written(two_view_project):
    from typer.testing import CliRunner

    from cinekit.cli import app

    y = two_view_project / "characters" / "ann.yaml"
    y.write_text(y.read_text().replace("view: side, rig: {joints: {nose: [100, 50]", "view: side, rig: {joints: {nose: [900, 50]"))
    out = CliRunner().invoke(app, ["check", str(two_view_project)])
    assert out.exit_code == 1
    assert "characters/ann.yaml:5:" in out.output and "references[1].rig.joints.nose" in out.output, out.output
