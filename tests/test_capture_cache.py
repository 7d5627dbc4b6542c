"""The capture cache (cinekit/capture/cache.py): planning a shot with footage runs MediaPipe once;
a second plan reads ``.cinekit-cache/capture`` (no MediaPipe call at all), an edited footage file
or a damaged entry is captured again, and the planned values are bit-identical either way.

The detector calls are counted on ``mediapipe_graphs.run``, the one function that runs a
MediaPipe graph (face and body), so "0 calls" means no frame went through a model. The footage
is the first 16 frames of footage/talkinghead-1.mp4 (a real talking face), re-encoded into the
project to keep each capture under a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.capture import mediapipe_graphs
from cinekit.testing.data import shared_data_dir
from tests.project_factory import make_project

CLIP = shared_data_dir() / "footage" / "talkinghead-1.mp4"
pytestmark = [
    pytest.mark.skipif(not mediapipe_graphs.available(),
                       reason="mediapipe is not installed (the capture extra, docs/capture.md)"),
    pytest.mark.skipif(not CLIP.is_file(), reason=f"test data {CLIP} not found"),
]

SHOTS = """\
    defaults: {fps: 12, size: [128, 128]}
    shots:
      - id: face
        kind: clip
        duration: 0.5
        prompt: "{ann}"
        camera: close_up
        characters: [{name: ann, performance: ../footage/talk.mp4}]
      - id: body
        kind: clip
        duration: 0.5
        prompt: "{ann}"
        characters: [{name: ann, pose: {detect: ../footage/talk.mp4}}]
    """


def _cut(path, first: int, n: int = 16) -> None:
    """Source frames ``first .. first+n-1`` of the clip, written as an mp4 at the clip's rate."""
    from cinekit.capture import footage
    from cinekit.render.writers import write_mp4

    keep = []
    for i, rgb in footage.frames(CLIP):
        if i >= first + n:
            break
        if i >= first:
            keep.append(rgb)
    write_mp4(path, keep, footage.source_fps(CLIP))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """(root, plan(): the face and body values planned with a fresh FileDigests, as a new
    `cinekit render` would; calls: the graphs MediaPipe ran, by name)."""
    from cinekit.render.cache import FileDigests
    from cinekit.render.plan import Planner
    from cinekit.spec.project import load_project

    root = make_project(tmp_path / "p", SHOTS, characters=("ann",))
    (root / "footage").mkdir()
    _cut(root / "footage" / "talk.mp4", 0)
    calls: list[str] = []
    real = mediapipe_graphs.run
    monkeypatch.setattr(mediapipe_graphs, "run",
                        lambda graph, *a, **kw: calls.append("face" if graph is mediapipe_graphs.FACE else "body")
                        or real(graph, *a, **kw))

    def plan(cache: bool = True):
        planner = Planner(load_project(root), files=FileDigests(), cache_dir=root / ".cinekit-cache" if cache else None)
        jobs = {p.job.shot_id: p.job for p in planner.plan()}
        face = jobs["face"].acting[0].face
        # the body: the detected track the shot's pose is made from (this head-and-shoulders
        # clip gives a head but no neck, so the shot's body-space pose itself is all NaN)
        [track] = [m.poses for key, m in planner._motions.items() if key[0] == "detect"]
        return face.mouth_open, face.eyes_closed, track, jobs["body"].pose

    return root, plan, calls


def _same(a, b) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) and x.dtype == y.dtype for x, y in zip(a, b))


def test_a_second_plan_reads_the_capture_from_the_cache_bit_identical(project):
    root, plan, calls = project
    first = plan()
    assert sorted(calls) == ["body", "face"]                 # captured once each
    assert np.isfinite(first[0]).all() and first[0].max() > 0.1   # a real face moved the mouth
    assert np.isfinite(first[2]).any()                       # and the body track found the person
    assert list((root / ".cinekit-cache" / "capture").glob("*.npz"))
    again = plan()
    assert sorted(calls) == ["body", "face"]                 # the second plan: no MediaPipe call
    assert _same(first, again)
    fresh = plan(cache=False)                                # the capture itself, no cache at all
    assert sorted(calls) == ["body", "body", "face", "face"]
    assert _same(first, fresh)


def test_edited_footage_is_captured_again(project):
    root, plan, calls = project
    first = plan()
    _cut(root / "footage" / "talk.mp4", 8)                  # other bytes, same path and length
    edited = plan()
    assert sorted(calls) == ["body", "body", "face", "face"]
    assert not np.array_equal(first[0], edited[0], equal_nan=True)
    plan()
    assert len(calls) == 4                                   # the edited clip's entry is used next time


def test_a_damaged_cache_entry_is_captured_again_not_an_error(project):
    root, plan, calls = project
    first = plan()
    for n, damage in enumerate(("truncated", "garbage", "wrong arrays"), start=1):
        for entry in (root / ".cinekit-cache").rglob("*.npz"):   # the face's and the body track's entries
            if damage == "truncated":
                entry.write_bytes(entry.read_bytes()[:100])
            elif damage == "garbage":
                entry.write_bytes(b"not an npz")
            else:
                np.savez(entry, mouth_open=np.zeros(3))
        again = plan()
        assert sorted(calls) == ["body"] * (n + 1) + ["face"] * (n + 1), damage
        assert _same(first, again), damage
    plan()
    assert len(calls) == 8                                   # and the entries were written anew
