"""Motion from a sentence: grammar -> segments -> body track; gaits whose planted feet stay put."""

from __future__ import annotations

import numpy as np
import pytest

from cinekit.pose import gait as gaits
from cinekit.pose.gait import GAITS, LEG, foot_skate, lock_feet
from cinekit.pose.library import load_library
from cinekit.pose.skeleton import INDEX
from cinekit.pose.text_motion import TextMotionError, parse, timeline, total_seconds
from cinekit.pose.text_track import text_track

LIB = load_library([])
NAMES = list(LIB)
R_WRIST, R_ANKLE, L_ANKLE, NECK = INDEX["right_wrist"], INDEX["right_ankle"], INDEX["left_ankle"], INDEX["neck"]
SKATE_BOUND = 0.02  # of the leg length, summed over one stance (issue 15)


def segs(text):
    return [(s.verb, round(s.t0, 6), round(s.t1, 6)) for s in timeline(parse(text, NAMES))]


@pytest.mark.parametrize("text, expected", [
    ("stand 0.5s, walk right 2s, wave 1s, jump",
     [("stand", 0, 0.5), ("walk", 0.5, 2.5), ("wave", 2.5, 3.5), ("jump", 3.5, 4.5)]),
    ("stand 500ms then walk 3 steps and sit 0.25 s", [("stand", 0, 0.5), ("walk", 0.5, 2.0), ("sit", 2.0, 2.25)]),
    ("Run LEFT 2 steps; cheer 2 seconds", [("run", 0, 0.64), ("cheer", 0.64, 2.64)]),
    ("slowly walk 2 steps, quickly wave", [("walk", 0, round(2 * 0.5 / 0.6, 6)), ("wave", 1.666667, 2.666667)]),
    ("walk to the left for 2s, arms crossed", [("walk", 0, 2.0), ("arms_crossed", 2.0, 3.0)]),
    ("walk, run", [("walk", 0, 2.0), ("run", 2.0, 3.28)]),          # defaults: 4 steps each
    ("Stand 1s, then jump. ", [("stand", 0, 1.0), ("jump", 1.0, 2.0)]),
])
def test_a_sentence_gives_its_segments_and_times(text, expected):
    assert segs(text) == expected


def test_a_project_pose_named_like_a_modifier_does_not_shadow_it():
    (walk,) = timeline(parse("walk left 1s", [*NAMES, "left", "Slowly"]))
    assert walk.clause.direction == "left" and walk.verb == "walk"


def test_a_gait_in_seconds_takes_whole_steps_that_fill_them_and_modifiers_are_read():
    (walk,) = timeline(parse("quickly walk left 1.7s", NAMES))
    assert walk.steps == 5 and walk.duration == 1.7       # 1.7 s / (0.5 s / 1.5) = 5.1 -> 5 steps
    assert walk.clause.direction == "left" and walk.clause.speed == 1.5
    blends = [s.blend for s in timeline(parse("stand 1s, walk 2s, sit 0.4s", NAMES))]
    assert blends == [0.0, pytest.approx(0.2), pytest.approx(0.2)]  # gait: before its first foot lands; half of 0.4 s


@pytest.mark.parametrize("text, message, word, hint", [
    ("stand 1s, wlak right 2s", "unknown verb 'wlak'", "wlak", "did you mean 'walk'?"),
    ("walk rihgt 2s", "unknown word 'rihgt'", "rihgt", "did you mean 'right'?"),
    ("wave left", "'wave' does not travel", "left", None),
    ("wave 3 steps", "'wave' has no steps", "3 steps", None),
    ("walk 2", "a duration needs a unit", "2", None),
    ("walk 2 sc", "a duration needs a unit", "2 sc", "did you mean 'sec'?"),
    ("walk 2s 3s", "two durations", "3s", None),
    ("stand 1s,, wave", "empty clause", ",", None),
    ("quickly 2s", "this clause has no verb", "quickly 2s", None),
    ("stand 1s + wave", "unexpected '+'", "+", None),
    ("walk 0s", "more than 0", "0s", None),
    ("walk towards the camera", "only left, right and in place", "towards", None),
])
def test_a_bad_sentence_names_the_word_and_where_it_is(text, message, word, hint):
    with pytest.raises(TextMotionError) as err:
        parse(text, NAMES)
    assert message in err.value.message
    assert text[err.value.start:err.value.end] == word
    if hint:
        assert err.value.hint == hint


def test_the_track_lasts_the_sum_of_its_clauses_and_then_holds():
    text, fps = "stand 0.5s, walk right 2s, wave 1s, jump 0.75s", 24
    total = total_seconds(timeline(parse(text, NAMES)))
    assert total == 0.5 + 2 + 1 + 0.75
    frames = round(total * fps)
    track = text_track(text, LIB, frames + 12, fps)
    assert track.poses.shape == (frames + 12, 18, 2) and np.isfinite(track.poses).all()
    assert np.array_equal(track.poses[frames:], np.broadcast_to(track.poses[frames], (12, 18, 2)))
    assert not np.array_equal(track.poses[frames - 3], track.poses[frames])  # still moving until the end
    np.testing.assert_allclose(track.poses[frames], LIB["stand"], atol=1e-9)  # a jump lands standing


def test_same_text_same_track_bit_for_bit():
    a = text_track("stand 0.5s, run left 1s, wave, jump", LIB, 60, 24)
    b = text_track("stand 0.5s, run left 1s, wave, jump", load_library([]), 60, 24)
    assert a.poses.tobytes() == b.poses.tobytes() and a.plant.tobytes() == b.plant.tobytes()


def _stances(contact: np.ndarray) -> int:
    return int(sum(np.sum(np.diff(contact[:, k].astype(int)) == 1) for k in range(2)))


@pytest.mark.parametrize("verb", ["walk", "run"])
@pytest.mark.parametrize("fps", [12, 30])
def test_a_gait_plants_its_feet_and_travels_at_its_stride_speed(verb, fps):
    track = text_track(f"{verb} right 8 steps", LIB, round(8 * GAITS[verb].step_time * fps), fps)
    body = lock_feet(track.poses, track.plant)
    assert _stances(track.contact) >= 6                       # feet do go down and up
    _, slide = foot_skate(body, track.contact)
    assert slide <= SKATE_BOUND * LEG
    _, treadmill = foot_skate(track.poses, track.contact)     # the measure sees a sliding foot
    assert treadmill > 0.1 * LEG
    # the root moves at the stride's speed (8 steps = 4 strides), to +x
    travel = body[-1, NECK, 0] - body[0, NECK, 0]
    assert travel == pytest.approx(4 * GAITS[verb].stride, rel=0.03)


def test_a_broken_gait_whose_feet_slide_fails_the_skate_bound(monkeypatch):
    # the lock following the swinging foot instead of the planted one: the planted foot slides
    from cinekit.pose import text_track as module

    real = gaits.plant_labels
    monkeypatch.setattr(gaits, "plant_labels", lambda g, phase: np.where((p := real(g, phase)) >= 0, 1 - p, p))
    monkeypatch.setattr(module, "_down_throughout", lambda plant, contact: plant)  # (it would catch this)
    track = text_track("walk right 8 steps", LIB, 96, 24)
    _, slide = foot_skate(lock_feet(track.poses, track.plant), track.contact)
    assert slide > SKATE_BOUND * LEG


def test_walk_left_travels_left_and_run_has_flight_phases():
    walk = text_track("walk left 4 steps", LIB, 48, 24)
    assert lock_feet(walk.poses, walk.plant)[-1, NECK, 0] < -0.5
    run = text_track("run 6 steps", LIB, 46, 24)
    assert (~run.contact.any(axis=1)).sum() >= 6               # both feet off the ground
    assert (walk.contact.any(axis=1)).all()                    # a walk always has a foot down


def test_walk_in_place_moves_the_legs_but_neither_travels_nor_claims_planted_feet():
    (seg,) = timeline(parse("walk in place 2 steps", NAMES))
    assert seg.clause.direction == "in_place" and seg.duration == 1.0
    track = text_track("walk in place 4 steps", LIB, 48, 24)
    body = lock_feet(track.poses, track.plant)
    assert not track.contact.any() and np.array_equal(body, track.poses)
    assert np.ptp(track.poses[:, R_ANKLE, 0]) > 0.2                     # the legs do swing


def test_wave_swings_the_raised_forearm_and_jump_leaves_the_floor():
    wave = text_track("wave 1s", LIB, 48, 48)
    wrist = wave.poses[:, R_WRIST]
    assert (wrist[:, 1] < LIB["wave"][INDEX["right_elbow"], 1]).all()   # hand above the elbow
    turns = np.sum(np.diff(np.sign(np.diff(wrist[:, 0]))) != 0)
    assert turns >= 3                                                   # 2 Hz: back and forth
    jump = text_track("jump 1s", LIB, 25, 24)
    feet = jump.poses[:, [R_ANKLE, L_ANKLE], 1].max(axis=1)             # lowest foot (y down)
    assert feet.min() < -0.2 and abs(feet[0]) < 1e-9 and abs(feet[-1]) < 1e-9
    neck = jump.poses[:, NECK, 1]
    assert neck[7] > LIB["stand"][NECK, 1] + 0.05                       # the crouch before the leap


@pytest.mark.parametrize("verb", [v for v in NAMES if v not in ("wave", "jump") and not v[:-1].endswith(("walk_", "run_"))])
def test_every_pose_verb_blends_in_and_holds_its_library_pose(verb):
    track = text_track(f"stand 0.5s, {verb} 1s", LIB, 36, 24)
    np.testing.assert_allclose(track.poses[-1], LIB[verb], atol=1e-9)
    np.testing.assert_allclose(track.poses[0], LIB["stand"], atol=1e-9)
    if not np.allclose(LIB[verb], LIB["stand"]):
        # eased: 0.3 s blend from 0.5 s, half-way at 0.65 s = frame 15.6 -> a pose in between
        mid = track.poses[15]
        assert not np.allclose(mid, LIB[verb]) and not np.allclose(mid, LIB["stand"])


def test_any_sentence_either_builds_a_finite_track_or_raises_a_located_error():
    # what `check` accepts must render: token soup from the grammar and around it, seeded
    rng = np.random.default_rng(15)
    slots = [["walk", "run", "wave", "jump", "sit", "arms crossed", "stand", "cheer", "look_back", "T_POSE"],
             ["2s", "0.5 s", "500ms", "3 steps", "1 step", ".5s", "9 steps", "0.04s"],
             ["left", "right", "in place"], ["slowly", "quickly"], ["for", "the"]]
    noise = ["wlak", "0s", "7", "+", "towards", ",", "then", "steps", "12 sec"]
    built = 0
    for _ in range(300):
        clauses = []
        for _ in range(rng.integers(1, 4)):
            words = [str(rng.choice(slot)) for i, slot in enumerate(slots) if i == 0 or rng.random() < 0.4]
            if rng.random() < 0.15:
                words.append(str(rng.choice(noise)))
            clauses.append(" ".join(rng.permutation(words)))
        text = str(rng.choice([", ", " then ", "; "])).join(clauses)
        try:
            segments = timeline(parse(text, NAMES))
        except TextMotionError as exc:
            assert 0 <= exc.start <= exc.end <= len(text) and exc.message
            continue
        fps = float(rng.choice([6, 12, 24, 30]))
        frames = int(rng.integers(1, 40))
        track = text_track(text, LIB, frames, fps)
        assert track.poses.shape == (frames, 18, 2) and np.isfinite(track.poses).all(), text
        body = lock_feet(track.poses, track.plant)
        assert np.isfinite(body).all() and total_seconds(segments) > 0
        built += 1
    assert built > 30
