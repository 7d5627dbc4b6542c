"""Every command spells a concept the same way; booleans are flags; old spellings still work (hidden).

The walk goes over the real click command tree that typer builds, so a new command or option is
checked without being listed here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from cinekit.cli import app

runner = CliRunner()

# concept -> (parameter names that mean it, the only visible spelling)
CONCEPTS = {
    "project": ({"project", "project_dir"}, ["--project", "-p"]),
    "shot ids": ({"shot", "shots", "shot_ids", "only"}, ["--shot", "-s"]),
    "output folder": ({"out", "out_dir", "renders", "output"}, ["--out", "-o"]),
    "file written": ({"file", "page", "otio"}, ["--file"]),
    "engine": ({"engine"}, ["--engine", "-e"]),
}
NOT_A_PROJECT = {("init",), ("models", "tiny")}        # they create a folder; nothing to load
# A real choice between two named states, or a tri-state whose unset default is decided from the
# input (footage vs skeleton video by the first frame; checkpointing on a GPU only).
BOOL_PAIRS = {("--burn-in", "--clean"), ("--detect", "--skeleton"),
              ("--grad-checkpointing", "--no-grad-checkpointing")}


def commands():
    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    return list(walk(get_command(app), ()))


def options(cmd):
    return [p for p in cmd.params if p.param_type_name == "option"]


def test_the_walk_sees_every_command():
    names = {" ".join(p) for p, _ in commands()}
    assert {"render", "still", "shot", "check", "report", "animatic", "board", "timeline", "sheet", "score",
            "poses show", "models check", "init"} <= names


@pytest.mark.parametrize("concept", sorted(CONCEPTS))
def test_one_visible_flag_name_per_concept(concept):
    dests, spelling = CONCEPTS[concept]
    bad = []
    for path, cmd in commands():
        for p in options(cmd):
            if p.name in dests and not p.hidden and sorted(p.opts) != sorted(spelling):
                bad.append((" ".join(path), p.opts))
            if p.hidden and p.name in dests and set(p.opts) & set(spelling):
                bad.append((" ".join(path), "a hidden alias takes the visible name", p.opts))
    assert not bad, bad


def test_every_command_on_a_project_takes_project():
    missing = [" ".join(path) for path, cmd in commands()
               if path not in NOT_A_PROJECT and not any(p.name in ("project", "project_dir") and p.opts[0] == "--project"
                                                       for p in options(cmd))]
    assert not missing, missing


def test_booleans_are_flags_that_take_no_value():
    bad = []
    for path, cmd in commands():
        for p in options(cmd):
            if p.type_descriptor.annotation is bool and not p.hidden:
                if not p.is_flag:
                    bad.append((" ".join(path), p.opts, "takes a value"))
                elif p.secondary_opts and (p.opts[0], p.secondary_opts[0]) not in BOOL_PAIRS:
                    bad.append((" ".join(path), p.opts + p.secondary_opts, "a --no- twin nobody needs"))
    assert not bad, bad
    result = runner.invoke(app, ["render", "--force=yes"])
    assert result.exit_code == 2 and "does not take a value" in result.output


def test_old_spellings_work_with_a_deprecation_note(tmp_path, monkeypatch):
    from tests.project_factory import make_project
    from tests.studio_project import SHOTS, write_tone

    root = make_project(tmp_path / "p", SHOTS)
    write_tone(root / "sound" / "line.wav")
    monkeypatch.chdir(root)
    old = runner.invoke(app, ["render", "--ci", "--only", "s010"])
    assert old.exit_code == 0, old.output
    assert "--only is deprecated: use --shot" in old.output and "rendered: ep/s010" in old.output
    assert "ep/s020" not in old.output
    new = runner.invoke(app, ["render", "--ci", "--shot", "s010", "--project", str(root)])
    assert new.exit_code == 0 and "deprecated" not in new.output and "cached: ep/s010" in new.output
    # --renders -> --out on the studio commands; an --out naming a file still writes that file
    res = runner.invoke(app, ["board", "shots/ep.yaml", "--renders", str(tmp_path / "none")])
    assert "--renders is deprecated: use --out" in res.output and "not rendered yet" in res.output
    runner.invoke(app, ["render", "--ci"])
    res = runner.invoke(app, ["timeline", "--project", str(root), "--otio", str(tmp_path / "a.otio")])
    assert res.exit_code == 0 and (tmp_path / "a.otio").is_file() and "--otio is deprecated" in res.output
    res = runner.invoke(app, ["board", "-o", str(tmp_path / "b.pdf")])
    assert res.exit_code == 0 and (tmp_path / "b.pdf").is_file() and "use --file" in res.output
    res = runner.invoke(app, ["board", "--file", str(tmp_path / "c.pdf"), "--out", "renders"])
    assert res.exit_code == 0 and (tmp_path / "c.pdf").is_file() and "deprecated" not in res.output


def test_shell_completion_script_is_printed(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cinekit", "--show-completion", "bash"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "_CINEKIT_COMPLETE" in out.stdout and "complete" in out.stdout
