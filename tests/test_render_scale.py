"""What keeps a batch's cost flat: O(1) manifest updates, clips streamed to the encoder,
video tracks cached by content. (The 10,000-shot and 1080p figures: ``benchmarks/bench_scale.py``
and ``benchmarks/bench_memory.py``.)"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np

from tests.project_factory import make_project
from tests.project_factory import render_ci as render

SMALL = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [64, 64], fps: 4}\n"


def stills(n: int) -> str:
    return "shots:\n" + "".join(f"  - {{id: s{i:03d}, prompt: '{{ann}}', seed: {i}, characters: [{{name: ann, pose: wave}}]}}\n"
                                for i in range(n))




# --------------------------------------------------------------------------- manifest
def test_the_manifest_is_written_once_per_batch_and_a_killed_batch_is_replayed(tmp_path, monkeypatch):
    from cinekit.engines.previz import PrevizEngine
    from cinekit.render import manifest as manifest_mod

    root = make_project(tmp_path / "p", stills(8), characters=("ann",), config=SMALL)
    writes = []
    real_write = manifest_mod.writers.write_json
    monkeypatch.setattr(manifest_mod.writers, "write_json",
                        lambda path, data: writes.append(Path(path).name) or real_write(path, data))
    real_stream, seen = PrevizEngine.stream, []

    def killed_at_the_sixth(self, job, progress=None, mask_frames=frozenset()):
        seen.append(job.shot_id)
        if len(seen) == 6:
            raise KeyboardInterrupt  # stands in for SIGKILL after five jobs were committed
        return real_stream(self, job, progress, mask_frames)

    monkeypatch.setattr(PrevizEngine, "stream", killed_at_the_sixth)
    real_compact = manifest_mod.Manifest.compact
    monkeypatch.setattr(manifest_mod.Manifest, "compact", lambda self: None)  # a SIGKILL runs no cleanup
    render(root)
    assert not (root / "renders/manifest.json").exists()
    journal = root / "renders/.manifest.journal"
    lines = [json.loads(line)["output"] for line in journal.read_text().splitlines()]
    assert lines == [f"ep/s{i:03d}" for i in range(5)]  # one line per committed job
    monkeypatch.setattr(PrevizEngine, "stream", real_stream)
    monkeypatch.setattr(manifest_mod.Manifest, "compact", real_compact)
    writes.clear()
    assert render(root).exit_code == 0
    assert [w for w in writes if w == "manifest.json"] == ["manifest.json"]  # 3 rendered + 5 cached jobs: one manifest write, at the end
    outputs = json.loads((root / "renders/manifest.json").read_text())["outputs"]
    assert sorted(outputs) == [f"ep/s{i:03d}" for i in range(8)] and not journal.exists()
    assert outputs["ep/s002"]["files"]["s002.png"]  # entries replayed from the journal are complete


# --------------------------------------------------------------------------- streaming
def _clip_job(root: Path, seconds: float):
    from cinekit.render.plan import Planner
    from cinekit.runtime import Runtime
    from cinekit.spec.project import load_project

    project = load_project(root)
    runtime = Runtime.for_project(project)
    job = next(p.job for p in Planner(project).plan() if p.job.kind == "clip")
    return runtime, job


def _peak_bytes(root: Path, out: Path, seconds: float, streamed: bool) -> int:
    from cinekit.engines.base import open_stream
    from cinekit.engines.previz import PrevizEngine
    from cinekit.render.outputs import write_result

    runtime, job = _clip_job(root, seconds)
    engine = PrevizEngine(runtime)
    tracemalloc.start()
    try:
        result = open_stream(engine, job) if streamed else engine.render(job)
        write_result(out, job, result, "mp4")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_clip_is_streamed_to_the_encoder_so_memory_does_not_grow_with_its_length(tmp_path):
    """Python-side peak (tracemalloc: numpy arrays included) of an 8-frame and a 64-frame clip."""
    peaks = {}
    for frames in (8, 64):
        shots = (f"shots:\n  - {{id: c, kind: clip, duration: {frames / 4}, prompt: '{{ann}}', "
                 "characters: [{name: ann, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}]}}]}\n")
        root = make_project(tmp_path / f"p{frames}", shots, characters=("ann",),
                            config=SMALL.replace("[64, 64]", "[320, 240]"))
        peaks[frames] = _peak_bytes(root, tmp_path / f"out{frames}", frames / 4, streamed=True)
        from tests.project_factory import frame_count

        assert frame_count(tmp_path / f"out{frames}/ep/c.mp4")[0] == frames
    frame_bytes = 320 * 240 * 3
    assert peaks[64] < 1.5 * peaks[8], peaks
    assert peaks[64] < 40 * frame_bytes, peaks  # a whole 64-frame clip (+ its control maps) would be 128


def test_puppet_stream_gives_the_pixels_and_masks_of_a_whole_render(tmp_path):
    from cinekit.engines.base import collect
    from cinekit.engines.puppet import PuppetEngine

    shots = ("shots:\n  - {id: c, kind: clip, duration: 1.5, prompt: '{ann}', characters: [{name: ann, "
             "pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1.5, pose: walk_c}]}}]}\n")
    root = make_project(tmp_path / "p", shots, characters=("ann",), config=SMALL.replace("[64, 64]", "[128, 96]"))
    runtime, job = _clip_job(root, 1.5)
    whole = PuppetEngine(runtime).render(job)
    streamed = collect(PuppetEngine(runtime).stream(job, mask_frames=range(job.frames)), job.frames)
    assert np.array_equal(whole.frames, streamed.frames) and np.array_equal(whole.masks, streamed.masks)
    assert whole.masks.any()
    sparse = list(PuppetEngine(runtime).stream(job, mask_frames={0, 5}).frames)
    assert [f for f, fr in enumerate(sparse) if fr.masks is not None] == [0, 5]


# --------------------------------------------------------------------------- video tracks
def _skeleton_video(path: Path, shift: float) -> None:
    from cinekit.pose.draw import draw_control_map
    from cinekit.render.writers import write_mp4
    from tests.test_pose_skeleton_video import known_pose

    write_mp4(path, [draw_control_map(known_pose(dx=shift + 6 * i), 400, 512) for i in range(6)], 6)


def test_a_skeleton_video_is_decoded_once_then_read_from_the_cache_by_content(tmp_path, monkeypatch):
    from cinekit.pose import motion

    shots = ("shots:\n  - {id: s010, prompt: '{ann}', characters: [{name: ann, pose: {video: ../motion/walk.mp4}}]}\n"
             "  - {id: s020, prompt: '{ann} twice', characters: [{name: ann, pose: {video: ../motion/walk.mp4}}]}\n")
    root = make_project(tmp_path / "p", shots, characters=("ann",), config=SMALL)
    (root / "motion").mkdir()
    _skeleton_video(root / "motion/walk.mp4", 0)
    calls = []
    real = motion.import_motion
    monkeypatch.setattr(motion, "import_motion", lambda path, **kw: calls.append(Path(path).name) or real(path, **kw))
    assert render(root).exit_code == 0 and calls == ["walk.mp4"]  # one decode for two shots
    first = (root / "renders/ep/s010.png").read_bytes()
    assert render(root, "--force").exit_code == 0 and calls == ["walk.mp4"]  # next run: from the cache
    assert (root / "renders/ep/s010.png").read_bytes() == first
    (root / "motion/walk.mp4").rename(root / "motion/moved.mp4")  # a moved file keeps its cache entry
    (root / "shots/ep.yaml").write_text(shots.replace("walk.mp4", "moved.mp4"))
    assert render(root).exit_code == 0 and calls == ["walk.mp4"]
    _skeleton_video(root / "motion/moved.mp4", 40)  # new content: decoded again
    assert render(root).exit_code == 0 and calls == ["walk.mp4", "moved.mp4"]
    assert (root / "renders/ep/s010.png").read_bytes() != first
