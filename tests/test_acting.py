"""Acting timelines: expression cross-fades, seeded blinks, mouth flaps inside lines, audio loudness."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.acting.audio import mouth_from_rms, rms_envelope
from cinekit.acting.timeline import (
    blink_runs,
    blink_track,
    expression_weights,
    flap_track,
    syllables,
)
from cinekit.render.plan import Planner
from cinekit.spec.project import load_project
from tests.acting_project import acting_project, write_wav


@pytest.mark.parametrize("fps", [12, 24])
def test_blinks_at_natural_intervals_and_reproducible(fps):
    n = 10 * fps
    counts = []
    for seed in range(20):
        eyes = blink_track(n, fps, seed)
        runs = blink_runs(eyes)
        counts.append(len(runs))
        assert 1 <= len(runs) <= 5, (seed, runs)              # 10 s at one blink every 2-6 s
        assert all(2 <= length <= 5 for _, length in runs), runs
        starts = [s for s, _ in runs]
        assert all((b - a) / fps >= 2.0 for a, b in zip(starts, starts[1:])), starts   # no double blinks
        assert starts[0] > 0                                   # frame 0 has open eyes
        np.testing.assert_array_equal(eyes, blink_track(n, fps, seed))   # same seed, same blinks
    assert 2.0 <= np.mean(counts) <= 3.5, counts               # ~15 a minute (Bentivoglio 1997)
    assert len({tuple(s for s, _ in blink_runs(blink_track(n, fps, s))) for s in range(20)}) > 10


def test_expression_keys_hold_and_cross_fade():
    times = np.arange(0, 3, 0.125)
    names, w = expression_weights("smile", [(1.0, "angry", "linear"), (2.0, "smile", "hold")], times)
    assert names == ("neutral", "smile", "angry")
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    s, a = names.index("smile"), names.index("angry")
    at = lambda t, c: w[np.isclose(times, t), c][0]  # noqa: E731
    assert at(0.625, s) == 1.0 and at(0.75, s) == 1.0          # the fade is 0.25 s: smile until 0.75 s
    assert at(0.875, a) == pytest.approx(0.5)                  # half way through the linear fade
    assert at(1.0, a) == 1.0
    assert at(1.875, a) == 1.0                                 # hold: angry up to the key at 2 s ...
    assert at(2.0, s) == 1.0 and at(2.5, s) == 1.0             # ... then a cut to smile


def test_flaps_only_inside_lines():
    fps, n = 24, 24 * 6
    lines = [(0.5, 2.0, "Hello there, how are you today?"), (3.5, 4.25, "")]
    mouth = flap_track(lines, n, fps)
    t = np.arange(n) / fps
    inside = ((t >= 0.5) & (t < 2.0)) | ((t >= 3.5) & (t < 4.25))
    assert not mouth[~inside].any()
    # one open-close per syllable: local maxima over 0.3 counted inside the first line
    first = mouth[(t >= 0.5) & (t < 2.0)]
    peaks = np.sum((first[1:-1] > 0.3) & (first[1:-1] >= first[:-2]) & (first[1:-1] > first[2:]))
    assert syllables("Hello there, how are you today?") == 8
    assert 6 <= peaks <= 8, peaks
    assert mouth[(t >= 3.5) & (t < 4.25)].max() > 0.5


def test_loudness_opens_the_mouth_and_silence_closes_it():
    rate, fps = 16000, 25
    t = np.arange(3 * rate) / rate
    amp = np.where((t >= 1) & (t < 2), 0.2 + 0.6 * (np.sin(2 * np.pi * 3 * t) > 0), 0.0)
    rms = rms_envelope(amp * np.sin(2 * np.pi * 220 * t), rate, fps, 3 * fps)
    mouth = mouth_from_rms(rms)
    f = np.arange(3 * fps) / fps
    assert not mouth[(f < 1) | (f >= 2)].any()                # silence: shut
    loud = (f >= 1) & (f < 2)
    envelope = np.array([amp[int(x * rate)] for x in f + 0.5 / fps])
    r = np.corrcoef(mouth[loud], envelope[loud])[0, 1]
    assert r > 0.9, r                                         # louder: wider
    assert mouth[loud].max() > 0.9 and mouth[loud].min() < mouth[loud].max() - 0.3


SHOTS = """\
    defaults: {fps: 12}
    shots:
      - id: talk
        kind: clip
        duration: 10
        seed: 7
        prompt: "{ann} talks to {bob}"
        dialogue:
          - {character: ann, at: 1.0, end: 2.5, line: "I told you so, didn't I?"}
          - {character: bob, at: 4.0, end: 5.0, line: "You did."}
        characters: [{name: ann}, {name: bob, blinks: false}]
      - id: loud
        kind: clip
        duration: 3
        prompt: "{ann}"
        audio: line.wav
        dialogue: [{character: ann, at: 0, end: 3}]
        characters: [{name: ann, expression: smile}]
      - id: music
        kind: clip
        duration: 3
        prompt: "{ann}"
        audio: line.wav
        dialogue: "ann hums along"
        characters: [{name: ann, blinks: false}]
      - id: both
        kind: clip
        duration: 3
        prompt: "{ann} and {bob}"
        audio: line.wav
        dialogue: [{character: ann, at: 1.0, end: 1.5}, {character: bob, at: 1.5, end: 2.0}]
        characters: [{name: ann}, {name: bob}]
      - id: face
        prompt: "{ann}"
        characters:
          - {name: ann, pose: {keyframes: [{at: 0, pose: stand, expression: smile}]}}
    """


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    root = acting_project(tmp_path_factory.mktemp("acting"), SHOTS)
    write_wav(root / "shots" / "line.wav", [(1.0, 0.0), (1.0, 0.5), (1.0, 0.0)])
    return {p.job.shot_id: p.job for p in Planner(load_project(root)).plan()}, root


def test_planned_faces(jobs):
    jobs, root = jobs
    talk = jobs["talk"]
    ann, bob = talk.acting
    t = np.arange(talk.frames) / talk.fps
    assert not ann.face.mouth_open[(t < 1.0) | (t >= 2.5)].any() and ann.face.mouth_open.max() > 0.5
    assert not bob.face.mouth_open[(t < 4.0) | (t >= 5.0)].any() and bob.face.mouth_open.max() > 0.5
    assert blink_runs(ann.face.eyes_closed) and not bob.face.eyes_closed.any()   # blinks: false
    again = Planner(load_project(root)).plan(["talk"])[0].job
    np.testing.assert_array_equal(again.acting[0].face.eyes_closed, ann.face.eyes_closed)  # seeded
    assert talk.to_record()["acting"][0]["sha256"] == again.to_record()["acting"][0]["sha256"]

    loud = jobs["loud"].acting[0]
    f = np.arange(jobs["loud"].frames) / jobs["loud"].fps
    assert not loud.face.mouth_open[(f < 1) | (f >= 2)].any()
    assert loud.face.mouth_open[(f >= 1.1) & (f < 1.9)].min() > 0.8
    assert loud.weights[:, loud.names.index("smile")].min() == 1.0

    assert jobs["music"].acting == ()                     # audio without timed lines: no mouth moves
    ann, bob = jobs["both"].acting                        # the audio moves each speaker in their line only
    assert ann.face.mouth_open[(f >= 1.1) & (f < 1.5)].min() > 0.8 and not ann.face.mouth_open[f >= 1.5].any()
    assert bob.face.mouth_open[(f >= 1.5) & (f < 1.9)].min() > 0.8 and not bob.face.mouth_open[f < 1.5].any()

    face = jobs["face"].acting[0]
    assert face.names == ("neutral", "smile") and face.weights[0, 1] == 1.0


def test_a_face_performance_plays_mouth_and_blinks(tmp_path):
    """``performance:`` footage (read by the face capture; injected here as the FacePerformance
    it returns) drives the mouth and the eyes; frames where no face was seen keep the line's flaps."""
    from cinekit.acting.performance import FacePerformance
    from cinekit.acting.plan import plan_acting
    from cinekit.spec.models import Shot

    shot = Shot.model_validate({
        "id": "p", "kind": "clip", "duration": 2.0, "prompt": "{ann}",
        "dialogue": [{"character": "ann", "at": 0.0, "end": 2.0, "line": "la la la la la la la la"}],
        "characters": [{"name": "ann", "performance": "take.mp4"}, {"name": "bob"}]})
    fps, n = 10.0, 20
    mouth = np.linspace(0, 1, n)
    mouth[5:8] = np.nan                                            # the face left the frame
    eyes = np.zeros(n)
    eyes[12:14] = 1.0
    calls = []

    def capture(path, f, frames):
        calls.append((path.name, f, frames))
        return FacePerformance(f, mouth.copy(), eyes.copy())

    ann, bob = plan_acting(shot, tmp_path / "shots" / "ep.yaml", n, fps, seed=1, performance=capture)
    assert calls == [("take.mp4", fps, n)]
    seen = np.isfinite(mouth)
    np.testing.assert_allclose(ann.face.mouth_open[seen], mouth[seen])
    flaps = ann.face.mouth_open[5:8]
    assert flaps.max() > 0.3                                       # not seen: the line's flaps
    np.testing.assert_array_equal(ann.face.eyes_closed, eyes)      # footage blinks, no automatic ones
    assert bob is None or not bob.face.mouth_open.any()            # bob says nothing
