"""`cinekit animatic`: read the movie back (frames, timecode pixels, audio samples, ffmpeg's view of it)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.spec.models import Shot
from cinekit.studio import media
from cinekit.studio.animatic import burn_timecode, plan_cuts, timecode_box
from cinekit.studio.episode import Episode, EpisodeShot
from tests.project_factory import frame_count
from tests.studio_project import HOLD, SECONDS, rendered_episode

runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return rendered_episode(tmp_path_factory.mktemp("studio") / "p")


def _invoke(root: Path, monkeypatch, *args: str):
    monkeypatch.chdir(root)
    return runner.invoke(app, list(args))


def _probe(path: Path) -> str:
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True)
    return out.stderr


def _pcm(path: Path, rate: int = 8000) -> np.ndarray:
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1",
                          "-ar", str(rate), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


# --------------------------------------------------------------------------- pure parts
def test_source_indices_resample_by_time():
    assert media.source_indices(6, 3, 12, 24).tolist() == [0, 0, 1, 1, 2, 2]          # each frame twice
    assert media.source_indices(4, 6, 12, 8).tolist() == [0, 1, 3, 4]                # every third dropped
    assert media.source_indices(5, 3, 8, 8).tolist() == [0, 1, 2, 2, 2]              # last frame held


def test_smpte_round_trip():
    assert media.smpte(0, 24) == "00:00:00:00"
    assert media.smpte(24 * 3661 + 5, 24) == "01:01:01:05"
    assert media.smpte(0, 24, media.parse_smpte("01:00:00:00", 24)) == "01:00:00:00"
    assert media.smpte(30, 29.97) == "00:00:01:00"
    with pytest.raises(ValueError):
        media.parse_smpte("00:00:00:24", 24)


def _fake(seconds: list[float]) -> Episode:
    shots = [EpisodeShot(i, Shot(id=f"s{i}"), "clip", "previz", Path("x.mp4"), None, 10.0, 1, (64, 64), s)
             for i, s in enumerate(seconds)]
    return Episode(None, Path("ep.yaml"), "ep.yaml", Path("."), shots, 24.0)


@pytest.mark.parametrize("fps", [8, 23.976, 24, 25, 30])
def test_cuts_sum_to_the_episode_within_a_frame(fps):
    ep = _fake([1 / 3, 0.7, 1.05, 2 / 3, 0.41, 5.0, 0.26])
    cuts = plan_cuts(ep, fps)
    assert [c.start for c in cuts[1:]] == [c.start + c.frames for c in cuts[:-1]]       # no gap, no overlap
    total = cuts[-1].start + cuts[-1].frames
    assert abs(total - ep.seconds * fps) <= 1
    with_cards = plan_cuts(ep, fps, slate=0.5)
    card = media.frame_count(0.5, fps)
    assert all(c.start - c.slate_start == card for c in with_cards)
    assert with_cards[-1].start + with_cards[-1].frames == total + card * len(cuts)


# --------------------------------------------------------------------------- the movie
def test_mp4_duration_timecode_and_audio(project, monkeypatch):
    out = project / "review" / "ep.mp4"
    result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "-o", str(out),
                     "--start-timecode", "01:00:00:00")
    assert result.exit_code == 0, result.output
    n, fps, size = frame_count(out)
    assert fps == 8 and size == (256, 192)
    assert abs(n - SECONDS * 8) <= 1, n
    info = _probe(out)
    assert "Audio: aac" in info and re.search(r"timecode\s*: 01:00:00:00?\b", info), info  # tmcd track
    # the timecode burned into a known frame is that frame's, not a neighbour's
    k = 21
    frame = next(f for i, f in enumerate(media.iter_frames(out)) if i == k)
    x0, y0, x1, y1 = timecode_box(size)
    got = frame[y0:y1, x0:x1].astype(float)

    def err(tc):
        ref = burn_timecode(np.zeros((size[1], size[0], 3), np.uint8), tc)[y0:y1, x0:x1]
        return np.abs(got - ref).mean()

    right = err(f"01:00:02:0{k - 16}")
    assert right < 4, right
    assert right < 0.5 * min(err(f"01:00:02:0{k - 17}"), err(f"01:00:02:0{k - 15}"), err("00:00:02:05"))
    # s020's line plays from s020's start (after the 2 s still) to its end, silence elsewhere
    pcm = _pcm(out)
    assert abs(len(pcm) / 8000 - SECONDS) < 0.1
    rms = lambda a, b: float(np.sqrt(np.mean(pcm[int(a * 8000):int(b * 8000)] ** 2)))  # noqa: E731
    assert rms(0.1, HOLD - 0.1) < 50
    assert rms(HOLD + 0.1, HOLD + 1.4) > 3000
    assert rms(HOLD + 1.6, SECONDS - 0.1) < 50


def test_png_sequence_is_the_rendered_pixels_resampled(project, monkeypatch):
    out = project / "review" / "seq"
    result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "--file", str(out), "-f", "png",
                     "--fps", "24", "--clean", "--slate", "0.25")
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.png"))
    card = 6
    assert len(files) == round(SECONDS * 24) + 3 * card
    assert (out / "audio.wav").is_file()
    from PIL import Image

    def frame(i):
        return np.asarray(Image.open(files[i]).convert("RGB"))

    still = np.asarray(Image.open(project / "renders" / "ep" / "s010.png").convert("RGB"))
    assert all(np.array_equal(frame(card + i), still) for i in (0, 47))
    assert frame(card).std() > 0 and not np.array_equal(frame(0), still)            # a title card first
    # s030 was rendered at 12 fps: at 24 fps each rendered frame shows twice, in order
    src = list(media.iter_frames(project / "renders" / "ep" / "s030.mp4"))
    first = 3 * card + 48 + 36
    shown = [frame(first + j) for j in range(24)]
    for j, f in enumerate(shown):
        assert np.array_equal(f, src[j // 2]), j


def test_exr_sequence_is_the_png_sequence_in_linear_light(project, monkeypatch):
    """-f exr: the same frames as -f png, each linearised (sRGB -> linear) as half floats; read
    back with OpenEXR and taken back to sRGB they are the PNG frames to within one level."""
    exr = pytest.importorskip("OpenEXR")
    from PIL import Image

    from cinekit.studio.exr import linear_to_srgb, srgb_to_linear

    out, png = project / "review" / "exr", project / "review" / "png-for-exr"
    for fmt, folder in (("exr", out), ("png", png)):
        result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "--file", str(folder), "-f", fmt,
                         "--fps", "8", "--clean")
        assert result.exit_code == 0, result.output
    files, pngs = sorted(out.glob("*.exr")), sorted(png.glob("*.png"))
    assert len(files) == len(pngs) == round(SECONDS * 8) and (out / "audio.wav").is_file()
    for i in (0, len(files) // 2, len(files) - 1):
        with exr.File(str(files[i])) as f:
            rgb = f.channels()["RGB"].pixels
        want = np.asarray(Image.open(pngs[i]).convert("RGB"))
        assert rgb.dtype == np.float16 and rgb.shape == want.shape
        assert np.abs(linear_to_srgb(rgb).astype(int) - want).max() <= 1
        # linear light, not the sRGB values copied: sRGB 235 (the background) is 0.83, not 0.92
        assert np.allclose(rgb.astype(np.float32), srgb_to_linear(want), atol=1e-3)
        assert float(rgb.mean()) < want.mean() / 255 - 0.03


def test_prores_when_ffmpeg_has_it(project, monkeypatch):
    out = project / "review" / "ep.prores"   # the container comes from --format, not the suffix
    result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "-o", str(out), "-f", "prores")
    assert result.exit_code == 0, result.output
    info = _probe(out)
    assert "Video: prores" in info and "Audio: pcm_s16le" in info and "mov,mp4" in info, info
    assert abs(frame_count(out)[0] - SECONDS * 8) <= 1


def test_unrendered_shots_are_named_with_the_command(project, monkeypatch, tmp_path):
    result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "--renders", str(tmp_path / "none"))
    assert result.exit_code == 1
    assert "3 of 3 shot(s) not rendered yet" in result.output and "s010, s020, s030" in result.output
    assert "cinekit render shots/ep.yaml" in result.output
    result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "--engine", "puppet")
    assert result.exit_code == 1 and "--engine puppet" in result.output


def test_missing_audio_is_a_located_error(project, monkeypatch):
    bad = project / "shots" / "bad.yaml"
    bad.write_text((project / "shots" / "ep.yaml").read_text().replace("../sound/line.wav", "../sound/nope.wav"))
    try:
        result = _invoke(project, monkeypatch, "animatic", "shots/bad.yaml")
    finally:
        bad.unlink()
    assert result.exit_code == 1
    assert "shots/bad.yaml:13:12: shots[1].audio: audio file not found" in result.output


MEMORY = textwrap.dedent("""\
    import re, sys
    from pathlib import Path
    from cinekit.spec.models import Shot
    from cinekit.studio.episode import Episode, EpisodeShot
    from cinekit.studio.animatic import write_animatic
    clip, still, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would include the forking pytest's)
        return int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
    for n in (10, 100):  # a clip every 5th shot (each clip costs an ffmpeg start); the peak so far rises
                         # if the 100-shot run needs more than the 10-shot one
        shots = [EpisodeShot(i, Shot(id=f"s{i}"), "clip", "previz", clip, None, 8.0, 12, (256, 192), 0.5) if i % 5 == 4
                 else EpisodeShot(i, Shot(id=f"s{i}"), "still", "previz", still, still, 8.0, 1, (256, 192), 0.25)
                 for i in range(n)]
        write_animatic(Episode(None, Path("ep.yaml"), "ep.yaml", Path("."), shots, 8.0), out / f"{n}.mp4")
        print(n, peak_kib())
    """)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_memory_does_not_grow_with_the_episode(project, tmp_path):
    """Peak RSS after a 10-shot and after a 100-shot animatic within 10 % (frames streamed, never collected)."""
    clip, still = project / "renders" / "ep" / "s020.mp4", project / "renders" / "ep" / "s010.png"
    proc = subprocess.run([sys.executable, "-c", MEMORY, str(clip), str(still), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peaks = dict(tuple(int(v) for v in line.split()) for line in proc.stdout.splitlines())
    assert frame_count(tmp_path / "100.mp4")[0] == 20 * 4 + 80 * 2
    assert peaks[100] < 1.10 * peaks[10], peaks


def test_list_soundtrack_plays_from_the_first_frame(project, monkeypatch):
    """The list's ``audio:`` starts at 0 under every shot; the shot's line still joins at its start."""
    listing = project / "shots" / "ep.yaml"
    original = listing.read_text()
    listing.write_text("audio: ../sound/line.wav\n" + original)   # a 3 s tone as the soundtrack
    out = project / "review" / "soundtrack.mp4"
    try:
        result = _invoke(project, monkeypatch, "animatic", "shots/ep.yaml", "-o", str(out))
    finally:
        listing.write_text(original)
    assert result.exit_code == 0, result.output
    pcm = _pcm(out)
    rms = lambda a, b: float(np.sqrt(np.mean(pcm[int(a * 8000):int(b * 8000)] ** 2)))  # noqa: E731
    assert rms(0.1, HOLD - 0.1) > 3000                     # under the still: only the soundtrack
    assert rms(HOLD + 1.6, SECONDS - 0.1) < 50             # both over: the tone is 3 s, s020's ended
    assert abs(len(pcm) / 8000 - SECONDS) < 0.1


def test_exr_without_openexr_names_the_package(monkeypatch, tmp_path):
    from cinekit.errors import CinekitError
    from cinekit.studio.exr import write_exr

    monkeypatch.setitem(sys.modules, "OpenEXR", None)   # as if openexr were not installed
    with pytest.raises(CinekitError) as err:
        write_exr(tmp_path / "f.exr", np.zeros((4, 4, 3), np.uint8))
    assert err.value.exit_code == 3 and err.value.hint == "pip install openexr"
