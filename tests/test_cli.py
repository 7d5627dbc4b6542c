"""The command line: exit codes, error messages, start-up cost (no torch for help/check/previz)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from typer.testing import CliRunner

from cinekit.cli import app
from tests.project_factory import frame_count, make_project

runner = CliRunner()

SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        camera: full
        characters: [{name: ann, pose: wave}]
      - id: s020
        kind: clip
        duration: 1.5
        prompt: "{ann} and {bob}"
        camera: wide
        characters:
          - {name: ann, position: left, pose: {keyframes: [{at: 0, pose: walk_a}, {at: 1, pose: walk_c}]}}
          - {name: bob, position: right, pose: stand, mirror: true}
    """


def _modules_after(args: list[str], cwd) -> set[str]:
    code = ("import sys, runpy\nsys.argv=['cinekit', *%r]\n"
            "try:\n    runpy.run_module('cinekit', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "import json; print('MODULES=' + json.dumps(sorted(sys.modules)))") % (args,)
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES=")][-1]
    return set(json.loads(line[len("MODULES="):]))


def test_help_and_check_do_not_import_torch_and_are_fast(example_project):
    import resource

    def cpu() -> float:  # the child's CPU time: a loaded machine stretches wall time, not this
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    for args in (["--help"], ["check"]):
        start = cpu()
        modules = _modules_after(args, example_project)
        elapsed = cpu() - start
        assert "torch" not in modules and "diffusers" not in modules, args
        assert elapsed < 3.0, f"{args}: {elapsed:.2f} s of CPU (includes interpreter start)"


def test_check_in_process_under_one_second(example_project, monkeypatch):
    monkeypatch.chdir(example_project)
    runner.invoke(app, ["check"])  # warm imports, as a second run of the command would be
    start = time.perf_counter()
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - start < 1.0


def test_previz_render_does_not_import_torch(tmp_path):
    root = make_project(tmp_path / "p", SHOTS)
    modules = _modules_after(["render", "--ci", "--engine", "previz"], root)
    assert "torch" not in modules
    assert (root / "renders" / "ep" / "s020.mp4").is_file()


def test_exit_code_1_with_located_errors(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS.replace("pose: wave", "pose: wavy"))
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "shots/ep.yaml:5:36: shots[0].characters[0].pose: unknown pose 'wavy'" in result.stderr
    assert "did you mean 'wave'?" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_exit_code_2_on_usage_error(tmp_path):
    result = runner.invoke(app, ["render", "--no-such-flag"])
    assert result.exit_code == 2


def test_exit_code_3_on_engine_failure_and_other_shots_still_render(tmp_path, monkeypatch):
    from cinekit.engines import base

    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_cli:BrokenOnClips")
    root = make_project(tmp_path / "p", SHOTS)
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["render", "--ci"])
    assert result.exit_code == 3
    assert "s020" in result.stderr and "engine exploded" in result.stderr
    assert (root / "renders" / "ep" / "s010.png").is_file()
    assert not (root / "renders" / "ep" / "s020.mp4").exists()


class BrokenOnClips:
    """The previz engine, except that clips fail: proves one failure does not stop the batch."""

    def __init__(self, runtime):
        from cinekit.engines.previz import PrevizEngine

        self.inner = PrevizEngine(runtime)
        self.name, self.kinds, self.version = "previz", self.inner.kinds, "test"

    def check_inputs(self, job):
        self.inner.check_inputs(job)

    def render(self, job, progress=None):
        from cinekit.errors import EngineError

        if job.kind == "clip":
            raise EngineError("engine exploded")
        return self.inner.render(job, progress)


def test_still_and_shot_commands_write_their_kind_only(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS)
    monkeypatch.chdir(root)
    assert runner.invoke(app, ["still", "shots/ep.yaml"]).exit_code == 0
    assert (root / "renders/ep/s010.png").is_file() and not (root / "renders/ep/s020.mp4").exists()
    result = runner.invoke(app, ["shot", "shots/ep.yaml", "--shot", "s020", "--format", "gif"])
    assert result.exit_code == 0, result.output
    assert (root / "renders/ep/s020.gif").is_file()
    result = runner.invoke(app, ["shot", "shots/ep.yaml", "--shot", "s02"])
    assert result.exit_code == 1 and "did you mean 's020'?" in result.stderr


def test_render_writes_frames_sizes_and_fps(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS)
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["render", "--ci"])
    assert result.exit_code == 0, result.output + result.stderr
    from PIL import Image

    with Image.open(root / "renders/ep/s010.png") as im:
        assert im.size == (256, 192)
        record = json.loads(im.text["cinekit"])
    assert record["job"]["shot_id"] == "s010" and record["job"]["seed"] == 0
    assert record["job"]["prompt"].startswith("ann, test character")
    frames, fps, size = frame_count(root / "renders/ep/s020.mp4")
    assert (frames, fps, size) == (12, 8.0, (256, 192))  # round(1.5 s * 8 fps)
    assert frame_count(root / "renders/ep/s020.control.mp4")[0] == 12


def test_refuses_to_overwrite_foreign_files(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", SHOTS)
    monkeypatch.chdir(root)
    (root / "renders/ep").mkdir(parents=True)
    (root / "renders/ep/s010.png").write_bytes(b"my own drawing")
    result = runner.invoke(app, ["still", "shots/ep.yaml"])
    assert result.exit_code == 1 and "was not written by cinekit" in result.stderr
    assert (root / "renders/ep/s010.png").read_bytes() == b"my own drawing"


def test_poses_list_and_show(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["poses", "list"])
    assert result.exit_code == 0 and "wave" in result.output and "walk_a" in result.output
    result = runner.invoke(app, ["poses", "show", "wave", "--out", "wave.png", "--size", "256"])
    assert result.exit_code == 0, result.output
    import numpy as np
    from PIL import Image

    with Image.open(tmp_path / "wave.png") as im:
        arr = np.asarray(im)
    assert arr.shape == (256, 256, 3) and (arr.sum(axis=2) > 0).mean() > 0.01


def test_init_scaffolds_a_project_that_checks_and_renders(tmp_path, monkeypatch):
    result = runner.invoke(app, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "new")
    assert runner.invoke(app, ["check"]).exit_code == 0
    result = runner.invoke(app, ["render", "--ci", "--engine", "previz"])
    assert result.exit_code == 0, result.output + result.stderr
    # --engine previz on a puppet project: its renders sit in their own folder
    assert sorted(p.name for p in (tmp_path / "new/renders/episode01/previz").glob("s0?0.*")) == [
        "s010.control.png", "s010.json", "s010.masks.npz", "s010.openpose.json", "s010.png", "s020.control.mp4",
        "s020.json", "s020.masks.npz", "s020.mp4", "s020.openpose.json", "s020.poster.png", "s030.control.png",
        "s030.json", "s030.masks.npz", "s030.openpose.json", "s030.png"]
    result = runner.invoke(app, ["init", str(tmp_path / "new")])
    assert result.exit_code == 1 and "is not empty" in result.stderr
