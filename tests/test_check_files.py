"""`check` reads what render reads: sizes per engine, confinement of project files, the CLI's
file-system errors, and the pieces of the file probes that render depends on."""

from __future__ import annotations

import errno

import pytest
from PIL import Image
from typer.testing import CliRunner

from cinekit.cli import app
from cinekit.spec.project import load_project
from tests.project_factory import CONFIG, make_project

runner = CliRunner()


@pytest.mark.parametrize("size", [(500, 500), (854, 480), (1366, 768)])
def test_weight_free_engines_take_any_size_and_render_it(tmp_path, monkeypatch, size):
    shots = f"shots:\n  - id: a\n    size: [{size[0]}, {size[1]}]\n    prompt: '{{ann}}'\n    characters: [{{name: ann, pose: wave}}]\n"
    root = make_project(tmp_path / "p", shots)
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["still", "shots/ep.yaml", "--engine", "previz"])
    assert result.exit_code == 0, result.output
    with Image.open(root / "renders/ep/a.png") as im:
        assert im.size == size


def test_diffusers_shots_still_need_blocks_of_8(tmp_path):
    root = make_project(tmp_path / "p", "shots:\n  - id: a\n    engine: diffusers\n    size: [854, 480]\n",
                        config=CONFIG + "models:\n  sd: {base: models/sd}\n")
    with pytest.raises(Exception) as info:
        load_project(root)
    text = "\n".join(p.format() for p in info.value.problems)
    assert "shots/ep.yaml:4:11: shots[0].size: width 854 is not divisible by 8, which the diffusers engine needs" in text
    assert "height 480" not in text


def test_puppet_joints_restated_in_check_match_the_puppet(tmp_path):
    from cinekit.puppet.bind import REQUIRED_JOINTS
    from cinekit.spec.check_media import PUPPET_JOINTS

    assert tuple(PUPPET_JOINTS) == tuple(REQUIRED_JOINTS)


def test_symlinked_character_outside_the_project_refused(tmp_path):
    root = make_project(tmp_path / "p", "shots:\n  - id: a\n")
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((root / "characters" / "bob.yaml").read_text().replace("name: bob", "name: eve")
                       .replace("refs/bob.png", str(root / "characters/refs/bob.png")))
    (root / "characters" / "eve.yaml").symlink_to(outside)
    result = runner.invoke(app, ["check", str(root)])
    assert result.exit_code == 1
    assert "characters/eve.yaml: resolves to" in result.output and "outside the project folder" in result.output
    load_project(root, allow_outside_paths=True)  # the flag lets it in


@pytest.mark.parametrize("code, phrase", [(errno.EACCES, "Permission denied"), (errno.EROFS, "read-only"),
                                          (errno.ENOSPC, "disk is full")])
def test_file_system_errors_are_clear_not_internal(tmp_path, monkeypatch, code, phrase):
    root = make_project(tmp_path / "p", "shots:\n  - id: a\n")
    monkeypatch.chdir(root)

    def refuse(*args, **kwargs):
        import os
        raise OSError(code, os.strerror(code), str(root / "renders" / "ep"))

    monkeypatch.setattr("cinekit.render.run.render_batch", refuse)
    result = runner.invoke(app, ["render"])
    assert result.exit_code == 3, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert "renders/ep" in result.output and phrase in result.output


def test_a_file_read_once_per_check_whatever_the_shots(tmp_path, monkeypatch):
    import cinekit.spec.file_checks as fc

    shots = "shots:\n" + "".join(f"  - id: s{i}\n    background: bg.png\n" for i in range(50))
    root = make_project(tmp_path / "p", shots)
    Image.new("RGB", (64, 64)).save(root / "shots" / "bg.png")
    calls = []
    real = fc.read_image
    monkeypatch.setattr(fc, "read_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    load_project(root)
    assert [c[0].name for c in calls].count("bg.png") == 1


def test_bomb_refused_by_header_even_when_pil_checks_are_off(tmp_path, monkeypatch):
    """Some libraries set PIL's MAX_IMAGE_PIXELS to None; check still refuses by the header,
    in milliseconds and without decoding (a 20000^2 RGBA decode would take 1.6 GB)."""
    import time

    from cinekit.spec.file_checks import Finding, read_image
    from tests.adversarial.hostile import png_header

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(20000, 20000))
    start = time.perf_counter()
    found = read_image(path)
    assert isinstance(found, Finding) and "20000x20000" in found.message
    assert time.perf_counter() - start < 0.5
