"""The puppet's face: expression art drawn with the head's transform, blinks and mouths in frames."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from cinekit.acting.timeline import blink_runs
from cinekit.engines.puppet import PuppetEngine
from cinekit.pose.skeleton import INDEX
from cinekit.puppet.bind import PARTS
from cinekit.puppet.deform import part_transforms
from cinekit.render.plan import Planner
from cinekit.runtime import Runtime
from cinekit.spec.project import load_project
from tests.acting_project import FACE, acting_project

SHOTS = """\
    defaults: {fps: 12, size: [320, 320]}
    shots:
      - {id: neutral, prompt: "{ann}", camera: close_up, characters: [{name: ann}]}
      - {id: smile, prompt: "{ann}", camera: close_up, characters: [{name: ann, expression: smile}]}
      - {id: mirrored, prompt: "{ann}", camera: close_up, characters: [{name: ann, expression: smile, mirror: true}]}
      - id: talk
        kind: clip
        duration: 6
        seed: 3
        prompt: "{bob}"
        camera: close_up
        dialogue: [{character: bob, at: 1.0, end: 2.5, line: "one two three four five six"}]
        characters: [{name: bob}]
    """


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = acting_project(tmp_path_factory.mktemp("face"), SHOTS)
    project = load_project(root)
    jobs = {p.job.shot_id: p.job for p in Planner(project).plan()}
    return jobs, PuppetEngine(Runtime.for_project(project)), root


def tilted(job, degrees: float):
    """The job with the head turned ``degrees`` about the neck (the nose, eyes and ears moved)."""
    pose = job.pose.copy()
    neck = pose[0, 0, INDEX["neck"]]
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    for j in ("nose", "right_eye", "left_eye", "right_ear", "left_ear"):
        v = pose[0, 0, INDEX[j]] - neck
        pose[0, 0, INDEX[j]] = neck + (c * v[0] - s * v[1], s * v[0] + c * v[1])
    return dataclasses.replace(job, pose=pose)


def expected_face(engine, job, art_rgba, mirror=False):
    """The smile art as the oracle places it: resized into FACE on the reference, moved by the
    head's transform (cv2.warpAffine, independent of the engine's raster), plus where it is
    fully inside (eroded 3 px) on the frame."""
    binding = engine.puppet("ann", "front", mirror).binding
    head = part_transforms(binding, job.pose[0, 0])[PARTS.index("head")]
    h, w = binding.labels.shape
    x0, y0, x1, y1 = FACE
    sheet = np.zeros((h, w, 3), np.float32)
    inside = np.zeros((h, w), np.float32)
    crop = cv2.resize(art_rgba[..., :3], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
    sheet[y0:y1, x0:x1] = crop
    inside[y0 + 3:y1 - 3, x0 + 3:x1 - 3] = 1
    if mirror:
        sheet, inside = sheet[:, ::-1].copy(), inside[:, ::-1].copy()
    out = cv2.warpAffine(sheet, head, (job.width, job.height), flags=cv2.INTER_LINEAR)
    where = cv2.warpAffine(inside, head, (job.width, job.height), flags=cv2.INTER_NEAREST) > 0.5
    return out, where


@pytest.mark.parametrize("degrees", [0.0, 25.0])
def test_smile_art_drawn_with_the_heads_transform(setup, degrees):
    jobs, engine, root = setup
    from PIL import Image

    art = np.asarray(Image.open(root / "characters" / "refs" / "ann_smile.png").convert("RGBA"))
    neutral_job, smile_job = tilted(jobs["neutral"], degrees), tilted(jobs["smile"], degrees)
    neutral = engine.render(neutral_job).frames[0].astype(np.float32)
    smile = engine.render(smile_job).frames[0].astype(np.float32)
    want, where = expected_face(engine, smile_job, art)
    assert where.sum() > 400                                  # the face is a sizeable piece of frame
    err = np.abs(smile[where] - want[where]).mean()
    away = np.abs(neutral[where] - want[where]).mean()
    assert err < 12.0, err                                    # the smile art, where the head put it
    assert away > 60.0, away                                  # ... which is not the neutral face
    head = engine.part_coverage(neutral_job, 0, 0)["head"] > 0    # the head part as drawn at rest
    np.testing.assert_array_equal(smile[~head], neutral[~head])   # only the head's pixels change


def test_mirrored_character_shows_mirrored_art(setup):
    jobs, engine, root = setup
    from PIL import Image

    art = np.asarray(Image.open(root / "characters" / "refs" / "ann_smile.png").convert("RGBA"))
    job = jobs["mirrored"]
    frame = engine.render(job).frames[0].astype(np.float32)
    want, where = expected_face(engine, job, art, mirror=True)
    assert np.abs(frame[where] - want[where]).mean() < 12.0


def test_blinks_and_mouth_in_the_frames(setup):
    """``bob`` has no eye or mouth art: drawn lids on blink frames, a drawn mouth while he speaks;
    every other frame is his neutral face."""
    jobs, engine, _ = setup
    job = jobs["talk"]
    acting = job.acting[0]
    frames = engine.render(job).frames.astype(np.int16)
    rest = frames[0]
    changed = np.abs(frames - rest).max(axis=(1, 2, 3)) > 40
    blinks = np.zeros(job.frames, bool)
    for start, length in blink_runs(acting.face.eyes_closed):
        blinks[start:start + length] = True
    talking = acting.face.mouth_open > 0.2
    assert blinks.any() and talking.any()
    assert changed[blinks].all() and changed[talking].all()
    assert not changed[~blinks & (acting.face.mouth_open == 0) & (acting.face.eyes_closed == 0)].any()
    # lids: the change of a blink frame lies around the rig's eyes (upper face), the mouth's below
    pose = job.pose[0, 0]
    eye_y, nose_y = pose[INDEX["right_eye"], 1], pose[INDEX["nose"], 1]
    f_blink = int(np.flatnonzero(blinks & ~talking)[0])
    f_talk = int(np.flatnonzero(talking & ~blinks)[0])
    ys_b = np.nonzero(np.abs(frames[f_blink] - rest).max(axis=2) > 40)[0]
    ys_t = np.nonzero(np.abs(frames[f_talk] - rest).max(axis=2) > 40)[0]
    assert abs(np.median(ys_b) - eye_y) < abs(np.median(ys_b) - nose_y) + 1e-6
    assert np.median(ys_t) > nose_y


def test_sheet_shows_views_and_every_expression(setup, tmp_path):
    import json

    from PIL import Image

    from cinekit.render.sheet import render_sheet, sheet_panels

    jobs, engine, root = setup
    project = engine.runtime.project
    rows = sheet_panels(project, "ann", "puppet", size=(96, 96))
    labels = [[p.label for p in row] for row in rows]
    assert labels[0] == ["rig", "front"] and labels[1] == ["neutral", "smile"]
    smile = rows[1][1].job
    assert smile.acting[0].names == ("neutral", "smile") and rows[1][0].job.acting == ()
    out = render_sheet(engine.runtime, "ann", "puppet", tmp_path / "ann.png", size=(96, 96))
    with Image.open(out) as page:
        record = json.loads(next(iter(page.text.values())))
    ids = [p["shot_id"] for p in record["panels"]]
    assert ids[:2] == ["expr-neutral", "expr-smile"]           # (the turnaround is the art itself)
    a, b = (engine.render(rows[1][k].job).frames[0] for k in (0, 1))
    assert np.abs(a.astype(int) - b.astype(int)).max() > 100      # the smile panel shows the smile art


def test_a_face_region_past_the_head_changes_only_the_head(tmp_path):
    """A face box reaching over the neck and shoulders: the art still draws on the head part only
    (the region is cut to the head's own pixels), so the rest of the figure is the neutral one."""
    root = acting_project(tmp_path / "p", SHOTS)
    text = (root / "characters" / "ann.yaml").read_text().replace(str(list(FACE)), "[60, 10, 140, 130]")
    (root / "characters" / "ann.yaml").write_text(text)
    project = load_project(root)
    jobs = {p.job.shot_id: p.job for p in Planner(project).plan(["neutral", "smile"])}
    engine = PuppetEngine(Runtime.for_project(project))
    neutral = engine.render(jobs["neutral"]).frames[0]
    smile = engine.render(jobs["smile"]).frames[0]
    cov = engine.part_coverage(jobs["neutral"], 0, 0)           # the parts as drawn at rest
    head = cov["head"] > 0
    others = np.max([a for n, a in cov.items() if n != "head"], axis=0) > 0
    changed = np.abs(smile.astype(int) - neutral.astype(int)).max(axis=2) > 0
    assert changed.sum() > 1000
    assert not changed[~head].any()
    assert (others & ~head).sum() > 0 and not changed[others & ~head].any()


def test_previz_mannequin_face_talks(setup):
    """previz: the mannequin's lips open while bob speaks (frames differ at the mouth, below the
    nose) and its control extra carries the face points; the rest of the frame does not change."""
    from cinekit.engines.previz import PrevizEngine

    jobs, engine, _ = setup
    job = jobs["talk"]
    res = PrevizEngine(engine.runtime).render(job)
    acting = job.acting[0]
    still = int(np.flatnonzero((acting.face.mouth_open == 0) & (acting.face.eyes_closed == 0))[0])
    talk = int(np.argmax(acting.face.mouth_open))
    body = slice(40, None)                                         # below the burnt-in title bar
    diff = np.abs(res.frames[talk].astype(int) - res.frames[still].astype(int)).max(axis=2)[body] > 30
    ys, xs = np.nonzero(diff)
    ys = ys + 40
    pose = job.pose[talk, 0]
    nose, eye = pose[INDEX["nose"]], pose[INDEX["right_eye"]]
    assert diff.sum() > 10 and ys.min() > nose[1] and ys.max() < pose[INDEX["neck"], 1]
    assert np.abs(xs - nose[0]).max() < 3 * abs(pose[INDEX["left_eye"], 0] - eye[0])
    assert (res.extras["control"][talk] == 255).all(axis=2).sum() > 100   # white face points
