"""The ``cinekit`` command line: this module only wires the command groups together.

Errors are mapped to exit codes in one place (``CinekitGroup``): 0 ok, 1 spec/user error,
2 usage, 3 engine/runtime failure. ``CINEKIT_DEBUG=1`` shows tracebacks.
Nothing here imports torch: engines are imported when a command needs them.
"""

from __future__ import annotations

import errno
import os
import sys

import typer
from typer.core import TyperGroup

from cinekit.errors import CinekitError


def _is_click_control_flow(exc: Exception) -> bool:
    """Typer ships its own copy of click; recognise both by class name along the MRO."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ClickException", "Exit", "Abort"}) and any(
        cls.__module__.split(".")[0] in ("click", "typer") for cls in type(exc).__mro__)


_OS_HINTS = {
    errno.EACCES: "check the folder's permissions, or choose another with --out / `output:`",
    errno.EPERM: "check the folder's permissions, or choose another with --out / `output:`",
    errno.EROFS: "the file system is read-only: choose another output folder with --out / `output:`",
    errno.ENOSPC: "the disk is full: free some space and run again (finished shots are kept)",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run again",
    errno.EFBIG: "the file is larger than this file system or a limit (ulimit -f) allows",
}


def _os_message(exc: OSError) -> str:
    """'cannot write renders/ep/s010.png: Permission denied' + a hint, from an OSError."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f" {exc.filename}" if exc.filename else ""
    text = f"file system error{':' if not where else ' at' + where + ':'} {what}"
    hint = _OS_HINTS.get(exc.errno or -1)
    return text + (f"\n    hint: {hint}" if hint else "")


class CinekitGroup(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CinekitError as exc:
            from cinekit.cli.ui import err_console

            if os.environ.get("CINEKIT_DEBUG") == "1":
                raise
            from rich.markup import escape

            err_console().print(f"[bold red]error:[/] {escape(exc.format())}", highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except (KeyboardInterrupt, SystemExit, typer.Exit):
            raise
        except OSError as exc:
            # The file system refused (read-only output folder, full disk, permissions): the
            # environment, not a bug of cinekit, so no "report it"; exit 3 (runtime).
            if os.environ.get("CINEKIT_DEBUG") == "1" or _is_click_control_flow(exc):
                raise
            from rich.markup import escape

            from cinekit.cli.ui import err_console

            err_console().print(f"[bold red]error:[/] {escape(_os_message(exc))}", highlight=False, soft_wrap=True)
            ctx.exit(3)
        except Exception as exc:
            if _is_click_control_flow(exc):  # usage errors (exit 2), --help, Abort: click handles them
                raise
            if os.environ.get("CINEKIT_DEBUG") == "1":
                raise
            from rich.markup import escape

            from cinekit.cli.ui import err_console

            err_console().print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                                "    hint: run again with CINEKIT_DEBUG=1 for the traceback, and report it",
                                highlight=False)
            ctx.exit(3)


# add_completion: `cinekit --install-completion` / `--show-completion` (bash, zsh, fish, PowerShell; docs/cli.md).
app = typer.Typer(cls=CinekitGroup, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  help="cinekit: the same character in every panel and every frame.")


def _print_version(value: bool) -> None:
    if value:
        from cinekit import __version__

        typer.echo(f"cinekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print cinekit's version and exit.")) -> None:
    """cinekit: the same character in every panel and every frame."""


def _wire() -> None:
    from cinekit.cli import poses, project, render

    project.register(app)
    render.register(app)
    app.add_typer(poses.app, name="poses")
    for module, name in (("cinekit.cli.models", "models"),):
        try:
            mod = __import__(module, fromlist=["app"])
        except ImportError:
            continue
        app.add_typer(mod.app, name=name)
    for module in ("cinekit.cli.sheet", "cinekit.cli.score", "cinekit.cli.studio", "cinekit.cli.rig",
                   "cinekit.cli.train"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        mod.register(app)


_wire()


def main() -> None:
    app(prog_name="cinekit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
