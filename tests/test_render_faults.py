"""Writer faults and repairs: a failed encode never reaches a final name, the next run renders
it again; a damaged output or sidecar is re-rendered; a file cinekit never wrote is kept.

Faults are injected for real where it is cheap: a file-size limit (``RLIMIT_FSIZE``) on a
``cinekit render`` subprocess (ffmpeg then dies of SIGXFSZ, Python gets EFBIG), encoders that
die or exit 0 after writing half a file, and a disk that reports ENOSPC.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cinekit.errors import EngineError
from tests.project_factory import make_project
from tests.project_factory import render_ci as render

REPO = Path(__file__).resolve().parents[1]
CONFIG = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [640, 480], fps: 12}\n"
SHOTS = """\
    shots:
      - id: s010
        size: [64, 64]
        prompt: "{ann} waves"
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 2.0
        prompt: "{ann} walks"
        characters:
          - {name: ann, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}, {at: 2, pose: walk_a}]}}
    """
SMALL = CONFIG.replace("[640, 480]", "[128, 96]").replace("fps: 12", "fps: 4")


def _project(tmp_path: Path, config: str = SMALL) -> Path:
    return make_project(tmp_path / "p", SHOTS, characters=("ann",), config=config)




def final_files(out: Path) -> set[str]:
    """Files at final names (no temporaries, journals or the lock)."""
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _fake_encoder(monkeypatch, script: str) -> None:
    """Replace the ffmpeg command by a Python script ``script`` (gets the output path as argv[1])."""
    from cinekit.render import encode

    code = textwrap.dedent(script)
    monkeypatch.setattr(encode, "ffmpeg_command", lambda path, w, h, fps: [sys.executable, "-c", code, str(path)])


def _frames(n: int, size=(64, 48)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, size[1], size[0], 3), dtype=np.uint8)


# --------------------------------------------------------------------------- the MP4 writer alone
def test_an_encoder_that_dies_is_an_engine_error_with_its_cause_and_leaves_nothing(tmp_path, monkeypatch):
    from cinekit.render.writers import write_mp4

    _fake_encoder(monkeypatch, """
        import os, signal, sys
        sys.stdin.buffer.read(5000)
        open(sys.argv[1], "wb").write(b"\\0" * 100)
        sys.stderr.write("x264 [error]: simulated encoder crash\\n"); sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """)
    with pytest.raises(EngineError) as err:
        write_mp4(tmp_path / "a.mp4", _frames(20), 12)
    assert "killed by SIGKILL" in err.value.message and "simulated encoder crash" in err.value.message
    assert os.listdir(tmp_path) == []  # no final file, no temporary


def test_an_encoder_that_exits_0_after_half_a_file_is_caught_by_the_check(tmp_path, monkeypatch):
    from cinekit.render.writers import write_mp4

    good = tmp_path / "good.mp4"
    write_mp4(good, _frames(6), 12)
    data = good.read_bytes()
    moov = data.index(b"moov") - 4  # faststart: ftyp, moov, mdat
    for cut, expected in ((len(data) // 2, "runs past the end"), (moov, "no 'moov'")):
        _fake_encoder(monkeypatch, f"""
            import sys
            sys.stdin.buffer.read()
            open(sys.argv[1], "wb").write(open({str(good)!r}, "rb").read()[:{cut}])
            """)
        with pytest.raises(EngineError, match=expected):
            write_mp4(tmp_path / "cut.mp4", _frames(6), 12)
        assert not (tmp_path / "cut.mp4").exists()
    # a whole file with the wrong number of frames is caught by decoding it
    _fake_encoder(monkeypatch, f"""
        import sys
        sys.stdin.buffer.read()
        open(sys.argv[1], "wb").write(open({str(good)!r}, "rb").read())
        """)
    with pytest.raises(EngineError, match="decodes to 6 frame"):
        write_mp4(tmp_path / "short.mp4", _frames(9), 12)
    assert sorted(os.listdir(tmp_path)) == ["good.mp4"]


# --------------------------------------------------------------------------- through `cinekit render`
def test_a_file_size_limit_fails_the_clip_only_and_the_next_run_renders_it(tmp_path):
    """RLIMIT_FSIZE: ffmpeg is killed by SIGXFSZ while writing s020.mp4 (the largest file)."""
    import resource

    root = _project(tmp_path, CONFIG)
    limit = 40_000

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-m", "cinekit", "render", "--ci"], cwd=root, env=env,
                          preexec_fn=limited, capture_output=True, text=True, timeout=120)
    out = root / "renders"
    assert proc.returncode == 3, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "SIGXFSZ (file-size limit exceeded)" in err and "s020" in err, err
    assert final_files(out) == {"ep/s010.png", "ep/s010.control.png", "ep/s010.masks.npz", "ep/s010.json",
                                "ep/s010.openpose.json", "manifest.json"}
    again = render(root)
    assert again.exit_code == 0, again.output
    assert "rendered: ep/s020" in again.stdout and "cached: ep/s010" in again.stdout
    # the premise: s020's video is over the limit, s010's files are not
    sizes = {p.name: p.stat().st_size for p in (out / "ep").iterdir()}
    assert sizes["s020.mp4"] > limit and all(v < limit for k, v in sizes.items() if k.startswith("s010")), sizes


def test_an_encoder_killed_mid_batch_fails_its_shot_only_and_is_rendered_next_time(tmp_path, monkeypatch):
    root = _project(tmp_path)
    _fake_encoder(monkeypatch, """
        import os, signal, sys
        sys.stdin.buffer.read(3000)
        open(sys.argv[1], "wb").write(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)
        """)
    result = render(root)
    assert result.exit_code == 3
    assert "ep/s020" in result.stderr and "killed by SIGKILL" in result.stderr
    assert final_files(root / "renders") == {"ep/s010.png", "ep/s010.control.png", "ep/s010.masks.npz",
                                             "ep/s010.json", "ep/s010.openpose.json", "manifest.json"}
    monkeypatch.undo()
    again = render(root)
    assert again.exit_code == 0 and "rendered: ep/s020 " in again.stdout and "cached: ep/s010" in again.stdout


def test_a_full_disk_while_writing_the_poster_removes_the_whole_job(tmp_path, monkeypatch):
    from PIL import Image

    root = _project(tmp_path)
    real_save = Image.Image.save

    def full_disk(self, fp, *args, **kwargs):
        if "poster" in str(fp):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    result = render(root)
    assert result.exit_code == 3 and "the disk is full" in " ".join(result.stderr.split())
    files = final_files(root / "renders")
    assert not any(f.startswith("ep/s020") for f in files), files  # its videos were removed too
    monkeypatch.undo()
    assert "rendered: ep/s020" in render(root).stdout


# --------------------------------------------------------------------------- repairs
def test_a_damaged_sidecar_or_output_is_rendered_again_not_refused(tmp_path):
    root = _project(tmp_path)
    assert render(root).exit_code == 0
    sidecar = root / "renders/ep/s020.json"
    sidecar.write_text(sidecar.read_text()[:200])  # torn JSON
    result = render(root)
    assert result.exit_code == 0, result.output
    assert "rendered: ep/s020" in result.stdout and "damaged record" in result.stdout
    video = root / "renders/ep/s020.mp4"
    video.write_bytes(video.read_bytes()[:1000])  # a truncated video under a valid sidecar
    result = render(root)
    assert result.exit_code == 0 and "output changed (s020.mp4)" in result.stdout
    from cinekit.render.verify import verify_mp4

    verify_mp4(video, 8)


def test_a_file_cinekit_never_wrote_is_still_refused(tmp_path):
    root = _project(tmp_path)
    (root / "renders/ep").mkdir(parents=True)
    (root / "renders/ep/s020.mp4").write_bytes(b"someone's video")
    result = render(root)
    assert result.exit_code == 1
    assert "was not written by cinekit; refusing to overwrite it" in " ".join(result.stderr.split())
    assert (root / "renders/ep/s020.mp4").read_bytes() == b"someone's video"
