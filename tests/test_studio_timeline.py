"""`cinekit timeline --otio`: read the file back with OpenTimelineIO and check every clip against the shots."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from tests.project_factory import frame_count
from tests.studio_project import HOLD, rendered_episode

runner = CliRunner()

# (id, kind, seconds, render rate, rendered file) as the shot list and cinekit.yaml define them
EXPECTED = [("s010", "still", HOLD, None, "renders/ep/s010.png"),
            ("s020", "clip", 1.5, 8.0, "renders/ep/s020.mp4"),
            ("s030", "clip", 1.0, 12.0, "renders/ep/s030.mp4")]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return rendered_episode(tmp_path_factory.mktemp("otio") / "p")


def test_every_clip_range_matches_its_shot(project, monkeypatch):
    monkeypatch.chdir(project)
    out = project / "edit" / "ep.otio"
    result = runner.invoke(app, ["timeline", "shots/ep.yaml", "--otio", str(out), "--start-timecode", "01:00:00:00"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert str(project) not in text                                   # no absolute path of this machine
    tl = otio.adapters.read_from_file(str(out))
    assert tl.global_start_time.to_seconds() == 3600   # (OTIO has no SMPTE at 8 fps to print it)
    video = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video]
    assert len(video) == 1
    clips = list(video[0].find_clips())
    assert [c.name for c in clips] == [e[0] for e in EXPECTED]
    start = 0.0
    for clip, (sid, kind, seconds, rate, rel) in zip(clips, EXPECTED):
        rng = clip.source_range
        assert clip.metadata["cinekit"]["kind"] == kind
        assert rng.duration.to_seconds() == pytest.approx(seconds, abs=1e-9), sid
        if rate is not None:
            assert rng.duration.rate == rate and rng.start_time.value == 0
            # the range is the rendered file's: frames decoded from the file at its rate
            n, fps, _ = frame_count(project / rel)
            assert (n, fps) == (rng.duration.value, rate)
            assert clip.media_reference.available_range.duration.value == n
        assert clip.range_in_parent().start_time.to_seconds() == pytest.approx(start, abs=1e-9), sid
        start += seconds
        assert clip.media_reference.target_url == rel and (project / rel).is_file()
        [marker] = clip.markers
        assert marker.name == sid and marker.comment == clip.metadata["cinekit"]["prompt"]
        assert marker.metadata["cinekit"]["shot_id"] == sid
    assert tl.duration().to_seconds() == pytest.approx(HOLD + 1.5 + 1.0, abs=1e-9)
    assert clips[1].markers[0].comment == "{ann} and {bob}"
    assert clips[0].metadata["cinekit"]["dialogue"] == "ANN: Hello there!"
    # s020's audio: a clip on an audio track, from s020's start for s020's length
    [audio] = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Audio]
    [line] = list(audio.find_clips())
    assert line.media_reference.target_url == "sound/line.wav"
    assert line.range_in_parent().start_time.to_seconds() == pytest.approx(HOLD)
    assert line.range_in_parent().duration.to_seconds() == pytest.approx(1.5)


def test_still_hold_and_frame_folders(project, monkeypatch, tmp_path):
    """A PNG-frame render becomes an image sequence; --hold sets the still's length."""
    monkeypatch.chdir(project)
    out = tmp_path / "frames"
    result = runner.invoke(app, ["render", "shots/ep.yaml", "--format", "png", "--out", str(out), "--ci"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["timeline", "shots/ep.yaml", "--renders", str(out), "--hold", "3",
                                 "--otio", str(tmp_path / "t.otio"), "--allow-outside-paths"])
    assert result.exit_code == 0, result.output
    tl = otio.adapters.read_from_file(str(tmp_path / "t.otio"))
    clips = list(tl.find_clips())
    assert clips[0].source_range.duration.to_seconds() == pytest.approx(3.0)
    ref = clips[2].media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference)
    first = ref.target_url_for_image_number(0)
    assert not first.startswith("/")
    assert (project / first).resolve() == (out / "ep" / "s030" / "0000.png").resolve()
    assert ref.number_of_images_in_sequence() == 12 and ref.rate == 12
