"""Body capture on footage: COCO-18 tracks from real footage and from a camera move over a real
photo, with every joint in view found near where a person marked it and every joint out of view
NaN; `poses import` of footage and `check` of a `detect:` shot without annotator weights."""
from __future__ import annotations

import numpy as np
import pytest

from cinekit.capture import mediapipe_graphs
from cinekit.pose.skeleton import INDEX
from cinekit.testing.data import shared_data_dir

DATA = shared_data_dir()
PHOTO = DATA / "real-refs" / "anyone-3.png"
CLIP = DATA / "footage" / "talkinghead-1.mp4"
needs_capture = pytest.mark.skipif(not mediapipe_graphs.available(),
                                   reason="mediapipe is not installed (the capture extra, docs/capture.md)")
needs_data = pytest.mark.skipif(not (PHOTO.is_file() and CLIP.is_file()), reason="test data not found")
HEAD = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
BELOW = ("right_hip", "left_hip", "right_knee", "left_knee", "right_ankle", "left_ankle",
         "right_elbow", "left_elbow", "right_wrist", "left_wrist")
W, H, N = 320, 480, 10


def _camera(k: int) -> tuple[float, float, float]:
    """Frame k of a slow push-in on the photo: (zoom, centre x, centre y) in photo pixels."""
    t = k / (N - 1)
    return 1.0 + 0.8 * t, 367.0 + 10 * t, 461.0 - 230 * t


def _to_frame(xy, k: int) -> np.ndarray:
    zoom, cx, cy = _camera(k)
    s = zoom * H / 922
    return (np.asarray(xy, float) - (cx, cy)) * s + (W / 2, H / 2)


@pytest.fixture(scope="module")
def push_in(tmp_path_factory):
    """A 10-frame mp4 pushing in from the whole figure to the hips (knees and ankles leave the frame)."""
    import cv2

    photo = cv2.imread(str(PHOTO))
    path = tmp_path_factory.mktemp("footage") / "push_in.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (W, H))
    for k in range(N):
        zoom, cx, cy = _camera(k)
        s = zoom * H / 922
        m = np.float32([[s, 0, W / 2 - s * cx], [0, s, H / 2 - s * cy]])
        writer.write(cv2.warpAffine(photo, m, (W, H), flags=cv2.INTER_AREA, borderValue=(245, 245, 245)))
    writer.release()
    return path


@needs_capture
@needs_data
def test_a_camera_push_in_gives_joints_in_view_and_nan_out_of_view(push_in):
    from cinekit.capture.body import detect_motion
    from tests.test_capture_rig import FIGURE_HEIGHT, HAND

    motion = detect_motion(push_in)
    assert motion.poses.shape == (N, 18, 2) and motion.fps == pytest.approx(10.0)
    worst, checked, unseen = 0.0, 0, 0
    for k in range(N):
        zoom, _cx, _cy = _camera(k)
        tol = 0.05 * FIGURE_HEIGHT * zoom * H / 922          # 5 % of the figure height, in frame pixels
        for name, xy in HAND.items():
            want = _to_frame(xy, k)
            got = motion.poses[k, INDEX[name]]
            margin = 0.08 * H
            if -0.0 <= want[0] < W and margin <= want[1] < H - margin:        # well inside the frame
                assert np.isfinite(got).all(), (k, name)
                worst = max(worst, float(np.hypot(*(got - want))) / tol)
                checked += 1
            elif want[1] > H + margin:                                         # well below the frame
                assert np.isnan(got).all(), (k, name, got)
                unseen += 1
    print(f"{checked} joints in view, worst error {worst:.2f} x the 5 % tolerance; {unseen} out of view, all NaN")
    assert worst <= 1.0 and checked >= 80 and unseen >= 15
    # plausible bones on the full-figure frames: limbs pair up left/right, thigh ~ shin
    from cinekit.pose.angles import bone_lengths
    from cinekit.pose.skeleton import BONES

    lengths = bone_lengths(motion.poses[0])
    bone = lambda a, b: lengths[BONES.index((INDEX[a], INDEX[b]))]  # noqa: E731
    for side in ("right", "left"):
        assert 0.8 <= bone(f"{side}_hip", f"{side}_knee") / bone(f"{side}_knee", f"{side}_ankle") <= 1.4
        assert 0.8 <= bone(f"{side}_shoulder", f"{side}_elbow") / bone(f"{side}_elbow", f"{side}_wrist") <= 1.4
    assert 0.85 <= bone("right_hip", "right_knee") / bone("left_hip", "left_knee") <= 1.15


@needs_capture
@needs_data
def test_talking_head_footage_gives_the_head_and_nan_for_the_unseen_body():
    from cinekit.capture.body import detect_motion

    motion = detect_motion(CLIP, step=25)              # 1 frame a second: 12 frames, the last an end card
    poses = motion.poses
    assert poses.shape == (12, 18, 2) and motion.fps == pytest.approx(1.0)
    head = np.isfinite(poses[:10, [INDEX[j] for j in HEAD]]).all(axis=-1)
    assert head.all()
    assert np.isnan(poses[:, [INDEX[j] for j in BELOW]]).all()      # below the frame: never guessed
    assert np.isnan(poses[11]).all()                                  # the end card: no one
    eyes = np.linalg.norm(poses[:10, INDEX["right_eye"]] - poses[:10, INDEX["left_eye"]], axis=-1)
    ears = np.linalg.norm(poses[:10, INDEX["right_ear"]] - poses[:10, INDEX["left_ear"]], axis=-1)
    assert np.all((0.35 <= eyes / ears) & (eyes / ears <= 0.8))     # eyes sit inside the ears
    assert np.all(poses[:10, INDEX["nose"], 1] > poses[:10, [INDEX["right_eye"], INDEX["left_eye"]], 1].max(axis=1))
    assert np.all(poses[:10, INDEX["right_eye"], 0] < poses[:10, INDEX["left_eye"], 0])  # facing us


@needs_capture
@needs_data
def test_poses_import_detects_footage_and_stores_the_motion(push_in, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cinekit.cli import app
    from cinekit.pose.library import load_library

    (tmp_path / "cinekit.yaml").write_text("output: out\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["poses", "import", str(push_in), "--name", "push"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "10 frames at 10 fps" in result.output
    stored = load_library([tmp_path / "poses"])["push"]
    assert stored.shape == (10, 18, 2)
    assert np.isfinite(stored[0]).all() and np.isnan(stored[-1, INDEX["right_ankle"]]).all()


def test_check_accepts_detect_without_annotators_only_when_mediapipe_is_there(monkeypatch):
    from cinekit.errors import UserError
    from cinekit.pose.detect import choose_detector

    monkeypatch.setattr(mediapipe_graphs, "available", lambda: True)
    assert choose_detector(None) == "mediapipe"
    assert choose_detector("/somewhere", person=1) == "openpose"
    with pytest.raises(UserError, match="person: 1 needs the OpenPose"):
        choose_detector(None, person=1)
    monkeypatch.setattr(mediapipe_graphs, "available", lambda: False)
    assert choose_detector("/somewhere") == "openpose"
    with pytest.raises(UserError, match="needs mediapipe") as err:
        choose_detector(None)
    assert "annotators:" in err.value.hint and "--no-deps" in err.value.hint


@pytest.mark.skipif(not (DATA / "pose-videos").is_dir() or not CLIP.is_file(), reason="test data not found")
def test_footage_and_skeleton_videos_are_told_apart():
    from cinekit.capture.footage import looks_like_footage

    assert looks_like_footage(CLIP)
    for skeleton in sorted((DATA / "pose-videos").glob("*.mp4")):
        assert not looks_like_footage(skeleton), skeleton


def test_check_of_a_detect_shot_names_what_is_missing(tmp_path, monkeypatch):
    import cv2

    from cinekit.errors import SpecError
    from cinekit.spec.project import load_project
    from tests.project_factory import make_project

    shots = """\
        shots:
          - id: s010
            kind: clip
            duration: 0.5
            prompt: "{ann} copies the footage"
            characters:
              - {name: ann, pose: {detect: clip.mp4}}
          - id: s020
            kind: clip
            duration: 0.5
            prompt: "{ann} copies the second person"
            characters:
              - {name: ann, pose: {detect: clip.mp4, person: 1}}
        """
    root = make_project(tmp_path, shots)
    writer = cv2.VideoWriter(str(root / "shots" / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (64, 64))
    for _ in range(12):
        writer.write(np.full((64, 64, 3), 200, np.uint8))
    writer.release()

    def errors() -> list[str]:
        try:
            load_project(root)
        except SpecError as exc:
            return [p.format() for p in exc.problems if p.severity == "error"]
        return []

    monkeypatch.setattr(mediapipe_graphs, "available", lambda: True)
    [only] = errors()
    assert only.startswith("shots/ep.yaml:13:") and "person: 1 needs the OpenPose annotator weights" in only
    monkeypatch.setattr(mediapipe_graphs, "available", lambda: False)
    first, second = errors()
    assert first.startswith("shots/ep.yaml:7:") and "pose detection needs mediapipe" in first
    assert "--no-deps mediapipe==0.10.14" in first and "annotators:" in first
    assert "person: 1 needs the OpenPose" in second
