"""The options every command spells the same way (one flag name per concept; see docs/cli.md).

| concept | flag |
|---|---|
| the project folder | ``--project/-p`` |
| shot ids | ``--shot/-s`` (repeatable) |
| the output folder (written by render, read by report/animatic/board/timeline) | ``--out/-o`` |
| the one file a command writes | ``--file`` |
| engine | ``--engine/-e`` |

Old spellings stay as hidden aliases that print a deprecation note (``alias``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def project_opt() -> Any:
    return typer.Option(None, "--project", "-p", help="Project folder (default: the current folder).")


def shot_opt() -> Any:
    return typer.Option(None, "--shot", "-s", help="Only this shot id (repeatable).")


def out_opt(help: str = "Output folder (default: `output` of cinekit.yaml).") -> Any:
    return typer.Option(None, "--out", "-o", help=help)


def file_opt(help: str) -> Any:
    return typer.Option(None, "--file", help=help)


def hidden(*names: str) -> Any:
    """An old spelling, kept working but not listed in --help."""
    return typer.Option(None, *names, hidden=True)


def note(old: str, new: str) -> None:
    from cinekit.cli.ui import err_console

    err_console().print(f"[yellow]note:[/] {old} is deprecated: use {new}", highlight=False)


def alias(value, old_value, old: str, new: str):
    """``value``, or the old spelling's ``old_value`` (with a deprecation note when that was used)."""
    if old_value is not None and old_value != [] and old_value != ():
        note(old, new)
        if value is None or value == [] or value == ():
            return old_value
    return value


def split_out(out: Path | None, file: Path | None, new: str = "--file") -> tuple[Path | None, Path | None]:
    """``--out`` used to name the written file in some commands: a path with a suffix that is not
    an existing folder (``ep.mp4``, ``board.pdf``) is still taken as that file (with a note);
    otherwise it is the output folder (which these commands read, so it exists)."""
    if out is not None and out.suffix and not out.is_dir():
        note(f"--out {out} (a file)", f"{new} {out}; --out names the output folder")
        return None, file or out
    return out, file
