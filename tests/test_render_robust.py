"""`render` under bad luck: a shot that fails does not stop the others; inputs edited during a
render; the project boundary; gate scores reused from sidecars; the summary's wall time."""

from __future__ import annotations

import re
import time
from pathlib import Path

from cinekit.engines.previz import PrevizEngine
from tests.project_factory import draw_figure, make_project
from tests.project_factory import render_ci as render

SMALL = "output: renders\nengines: {still: previz, clip: previz}\ndefaults: {size: [96, 64], fps: 4}\n"
SHOTS = """\
    shots:
      - id: s010
        prompt: "{ann} waves"
        characters: [{name: ann, pose: wave}]
      - id: s020
        prompt: "{bob} stands"
        characters: [{name: bob, pose: stand}]
      - id: s030
        kind: clip
        duration: 1.0
        prompt: "{ann} and {bob}"
        characters: [{name: ann, position: left, pose: wave}, {name: bob, position: right, pose: stand}]
      - id: s040
        prompt: "{ann} again"
        characters: [{name: ann, pose: stand}]
    """




def flat(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- keep going
def test_a_character_that_cannot_be_planned_fails_only_its_shots(tmp_path, monkeypatch):
    from cinekit.errors import UserError
    from cinekit.render.plan import Planner

    real = Planner.lengths

    def broken_bob(self, name):
        if name == "bob":
            raise UserError("characters/bob.yaml: rig: joint at 1e300 (simulated)")
        return real(self, name)

    monkeypatch.setattr(Planner, "lengths", broken_bob)
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    result = render(root, "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == 1, result.output
    assert "rendered: ep/s010" in result.stdout and "rendered: ep/s040" in result.stdout
    assert "2 rendered, 0 cached, 2 failed" in flat(result.stdout)
    err = flat(result.stderr)
    assert "2 shot(s) failed:" in err and "s020: characters/bob.yaml: rig: joint at 1e300" in err
    assert 'failures="2"' in (tmp_path / "r.xml").read_text()
    # --fail-fast keeps the old behaviour: the first failure stops the command before any render
    again = render(root, "--fail-fast", "--force")
    assert again.exit_code == 1 and "rendered:" not in again.stdout


class FailForBob:
    """The previz engine, except that it cannot draw bob (an engine-level failure)."""

    name, kinds, version = "previz", PrevizEngine.kinds, PrevizEngine.version

    def __init__(self, runtime):
        self.inner = PrevizEngine(runtime)

    def check_inputs(self, job):
        from cinekit.errors import EngineError

        if any(c.name == "bob" for c in job.characters):
            raise EngineError("cannot draw bob (simulated)")

    def stream(self, job, progress=None, mask_frames=frozenset()):
        return self.inner.stream(job, progress, mask_frames)


def test_a_character_the_engine_cannot_draw_fails_only_its_shots(tmp_path, monkeypatch):
    from cinekit.engines import base

    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_render_robust:FailForBob")
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    result = render(root)
    assert result.exit_code == 3
    assert "2 rendered, 0 cached, 2 failed" in flat(result.stdout)
    assert (root / "renders/ep/s040.png").is_file() and not (root / "renders/ep/s030.mp4").exists()


# --------------------------------------------------------------------------- input snapshot
class EditArtDuringRender:
    """Previz, but the first job overwrites ann's reference art once the batch has started."""

    name, kinds, version = "previz", PrevizEngine.kinds, PrevizEngine.version
    art: Path | None = None

    def __init__(self, runtime):
        self.inner = PrevizEngine(runtime)

    def check_inputs(self, job):
        if EditArtDuringRender.art is not None:
            draw_figure(EditArtDuringRender.art, colour=(20, 220, 40))  # a different character
            EditArtDuringRender.art = None

    def stream(self, job, progress=None, mask_frames=frozenset()):
        return self.inner.stream(job, progress, mask_frames)


def test_art_edited_during_a_render_never_leaves_an_output_that_does_not_match_its_key(tmp_path, monkeypatch):
    """The key records the bytes the engine drew with: after the edit is undone, the cached
    output is byte-identical to a fresh render of the art its key names."""
    from cinekit.engines import base

    root = make_project(tmp_path / "p", SHOTS.split("      - id: s020")[0], config=SMALL)  # s010 only
    art = root / "characters/refs/ann.png"
    original = art.read_bytes()
    EditArtDuringRender.art = art
    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_render_robust:EditArtDuringRender")
    assert render(root).exit_code == 0
    assert art.read_bytes() != original  # the edit happened during the render
    art.write_bytes(original)  # undone: the key of the cached output matches again
    monkeypatch.setitem(base._REGISTRY, "previz", "cinekit.engines.previz:PrevizEngine")
    assert "cached: ep/s010" in render(root).stdout
    assert render(root, "--force", "--out", str(tmp_path / "fresh")).exit_code == 0
    assert (root / "renders/ep/s010.png").read_bytes() == (tmp_path / "fresh/ep/s010.png").read_bytes()


# --------------------------------------------------------------------------- project boundary
def test_output_outside_the_project_is_refused_with_its_location_unless_allowed(tmp_path):
    root = make_project(tmp_path / "p", SHOTS, config=SMALL.replace("output: renders", "output: ../elsewhere"))
    result = render(root)
    assert result.exit_code == 1
    assert "cinekit.yaml:1:9: output: '../elsewhere' points outside the project folder" in flat(result.stderr)
    assert not (tmp_path / "elsewhere").exists()
    assert render(root, "--allow-outside-paths").exit_code == 0 and (tmp_path / "elsewhere/ep/s010.png").is_file()


def test_a_character_file_linked_from_outside_the_project_is_refused(tmp_path):
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    outside = tmp_path / "shared" / "bob.yaml"
    outside.parent.mkdir()
    art = root / "characters/refs/bob.png"  # its art is inside: only the link itself leaves the project
    outside.write_text((root / "characters/bob.yaml").read_text().replace("refs/bob.png", str(art)))
    (root / "characters/bob.yaml").unlink()
    (root / "characters/bob.yaml").symlink_to(outside)
    result = render(root)
    assert result.exit_code == 1
    # refused while the project loads (spec: the link resolves outside) or at the render's
    # boundary check (render.paths), whichever sees it first; never followed
    err = flat(result.stderr)
    assert (f"characters/bob.yaml: is a link to {outside}, outside the project folder" in err
            or ("characters/bob.yaml: resolves to" in err and "outside" in err)), err
    assert not (root / "renders").exists()
    # an output subfolder linked outside the output folder is refused too
    (root / "characters/bob.yaml").unlink()
    outside.rename(root / "characters/bob.yaml")
    (root / "renders").mkdir()
    (root / "renders/ep").symlink_to(tmp_path / "shared", target_is_directory=True)
    result = render(root)
    assert result.exit_code == 1 and "outside the output folder" in flat(result.stderr)
    assert list((tmp_path / "shared").iterdir()) == []


# --------------------------------------------------------------------------- gates, wall time
def test_cached_outputs_are_gated_from_the_scores_in_their_sidecars(tmp_path, monkeypatch):
    from cinekit.score import gates

    calls = []
    real = gates.score_output
    monkeypatch.setattr(gates, "score_output", lambda path, project: calls.append(path) or real(path, project))
    shots = SHOTS.split("      - id: s030")[0]
    root = make_project(tmp_path / "p", shots, config=SMALL + "gates: {palette_delta_e: {max: 0.001}}\n")
    first = render(root)
    assert first.exit_code == 3 and len(calls) == 2
    again = render(root)
    assert again.exit_code == 3 and len(calls) == 2  # not scored again, still failing
    assert flat(again.stderr).count("quality gate: ") == flat(first.stderr).count("quality gate: ") == 2
    # a re-rendered output is scored again
    (root / "characters/ann.yaml").write_text((root / "characters/ann.yaml").read_text() + "# edit\n")
    assert render(root).exit_code == 3 and len(calls) == 3


def test_the_summary_reports_the_commands_wall_time(tmp_path, monkeypatch):
    from cinekit.render.plan import Planner

    real = Planner.plan_all

    def slow(self, *args, **kwargs):
        time.sleep(1.5)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Planner, "plan_all", slow)
    root = make_project(tmp_path / "p", SHOTS.split("      - id: s020")[0], config=SMALL)
    start = time.perf_counter()
    result = render(root)
    elapsed = time.perf_counter() - start
    shown = float(re.search(r"0 failed, ([0-9.]+) s", flat(result.stdout)).group(1))
    assert 1.5 <= shown <= elapsed + 0.05


def test_an_output_folder_that_cannot_be_written_is_a_located_user_error(tmp_path, monkeypatch):
    import errno

    from cinekit.render import lock

    def read_only(self):  # what os.open raises on a read-only folder (tests run as root: chmod does not bite)
        raise PermissionError(errno.EACCES, "Permission denied", str(self.path))

    monkeypatch.setattr(lock.FolderLock, "_acquire", read_only)
    root = make_project(tmp_path / "p", SHOTS.split("      - id: s020")[0], config=SMALL)
    result = render(root)
    assert result.exit_code == 1 and "internal error" not in result.output + result.stderr
    assert f"cannot write into {root / 'renders'}: Permission denied" in flat(result.stderr)


class BuggyEngine:
    """Previz, except s020 hits a bug (an exception that is not a CinekitError)."""

    name, kinds, version = "previz", PrevizEngine.kinds, PrevizEngine.version

    def __init__(self, runtime):
        self.inner = PrevizEngine(runtime)

    def check_inputs(self, job):
        if job.shot_id == "s020":
            {}["missing"]  # noqa: B018 - a KeyError deep in an engine

    def stream(self, job, progress=None, mask_frames=frozenset()):
        return self.inner.stream(job, progress, mask_frames)


def test_an_unexpected_engine_error_fails_its_shot_in_one_line_without_a_traceback(tmp_path, monkeypatch):
    from cinekit.engines import base

    monkeypatch.setitem(base._REGISTRY, "previz", "tests.test_render_robust:BuggyEngine")
    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    result = render(root)
    assert result.exit_code == 3 and "3 rendered, 0 cached, 1 failed" in flat(result.stdout)
    assert "Traceback" not in result.output + result.stderr
    assert "s020: KeyError: 'missing' (at test_render_robust.py:" in flat(result.stderr)


def test_reference_art_that_does_not_decode_is_a_user_error_naming_the_file(tmp_path):
    import pytest

    from cinekit.errors import UserError
    from cinekit.identity.core import load_identity
    from cinekit.spec.project import load_project

    root = make_project(tmp_path / "p", SHOTS, config=SMALL)
    art = root / "characters/refs/bob.png"
    project = load_project(root)
    for broken in (art.read_bytes()[:300], b"not an image"):
        art.write_bytes(broken)
        with pytest.raises(UserError, match=rf"{art}: cannot read it as an image \("):
            load_identity(*project.characters["bob"])
