"""`cinekit --version` and the studio commands' place in the CLI (no torch for any of them)."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

import cinekit
from cinekit.cli import app

runner = CliRunner()


def test_version_flag_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"cinekit {cinekit.__version__}"
    result = runner.invoke(app, ["--version=1"])
    assert result.exit_code == 2   # a flag, it takes no value


def test_help_lists_the_studio_commands_and_imports_no_torch(tmp_path):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("animatic", "board", "timeline", "--version"):
        assert name in result.output
    code = ("import sys, runpy, json\nsys.argv=['cinekit', '--version']\n"
            "try:\n    runpy.run_module('cinekit', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith(f"cinekit {cinekit.__version__}\n"), out.stdout[:200] + out.stderr[-2000:]
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    assert not modules & {"torch", "diffusers", "opentimelineio", "fpdf", "cinekit.studio.animatic"}


def test_a_missing_export_library_names_the_package(monkeypatch):
    import pytest

    from cinekit.errors import CinekitError
    from cinekit.studio import require

    monkeypatch.setitem(sys.modules, "fpdf", None)   # as if fpdf2 were not installed
    with pytest.raises(CinekitError) as err:
        require("fpdf", "fpdf2")
    assert err.value.exit_code == 3 and err.value.hint == "pip install fpdf2"
