"""`cinekit init` and `cinekit check`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from cinekit.cli.options import project_opt
from cinekit.cli.ui import console, err_console, print_problems
from cinekit.errors import SpecError, UserError


def load(path: Path, shotlists=None, allow_outside_paths=False, allow_pickle=False):
    """Load + validate; print warnings; SpecError propagates to the CLI's error mapping."""
    from cinekit.spec.project import load_project

    project = load_project(path, shotlists, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle)
    print_problems(project.warnings)
    return project


def split_target(target: Path | None) -> tuple[Path, list[Path] | None]:
    """A command's PATH argument: a project folder, cinekit.yaml, or one shot list file."""
    target = Path(target or ".")
    if target.is_file() and target.name != "cinekit.yaml":
        return target, [target]
    if not target.exists():
        raise UserError(f"{target}: no such file or folder")
    return target, None


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        path: Path = typer.Argument(None, help="Project folder, cinekit.yaml, or a shot list (default: .)"),
        project_dir: Path = project_opt(),
        allow_outside_paths: bool = typer.Option(False, "--allow-outside-paths",
                                                 help="Let YAML paths point outside the project."),
        allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                          help="Accept pickle model files (.ckpt/.bin/.pt): unsafe."),
    ):
        """Validate every file of the project; report every problem as path:line:col."""
        start = time.perf_counter()
        target, lists = split_target(path or project_dir)
        try:
            project = load(target, lists, allow_outside_paths, allow_pickle)
        except SpecError as exc:
            print_problems(exc.problems)
            n = len([p for p in exc.problems if p.severity == "error"])
            err_console().print(f"[red]{n} error(s)[/]")
            raise typer.Exit(1) from None
        if project.config.models:   # model sets against what the shots ask of them (no weight is read)
            from cinekit.engines.project_models import check_project_models

            found = check_project_models(project, allow_pickle=allow_pickle)
            print_problems(found)
            if any(p.severity == "error" for p in found):
                err_console().print(f"[red]{sum(p.severity == 'error' for p in found)} error(s)[/]")
                raise typer.Exit(1)
        shots = sum(len(s.shots) for s in project.shotlists.values())
        console().print(f"ok: {len(project.characters)} character(s), {len(project.shotlists)} shot list(s), "
                        f"{shots} shot(s), {len(project.warnings)} warning(s) ({time.perf_counter() - start:.2f} s)")

    @app.command()
    def init(
        directory: Path = typer.Argument(..., help="Folder to create (must be empty or absent)."),
    ):
        """Create a new project that renders as is (two characters, one episode)."""
        from cinekit.scaffold import scaffold

        scaffold(directory)
        console().print(f"created {directory}\nnext: cd {directory} && cinekit check && cinekit render")
