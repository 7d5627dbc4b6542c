"""`cinekit still`, `cinekit shot` and `cinekit render`: plan, render, write, summarise."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cinekit.cli.project import load, split_target
from cinekit.cli.ui import RichProgress, console, summary_table
from cinekit.errors import UserError

CLIP_FORMATS = ("mp4", "gif", "png")


def _run(targets: list[Path], *, kind: str | None, shot_ids: list[str], engine: str | None, out: Path | None,
         fmt: str, force: bool, fail_fast: bool, ci: bool, allow_outside_paths: bool, allow_pickle: bool,
         device: str) -> None:
    from cinekit.render.plan import Planner
    from cinekit.render.run import render_jobs
    from cinekit.runtime import Runtime

    if fmt not in CLIP_FORMATS:
        raise typer.BadParameter(f"{fmt!r}: choose one of {', '.join(CLIP_FORMATS)}", param_hint="--format")
    lists: list[Path] | None = None
    root = Path(".")
    for t in targets or [Path(".")]:
        root, found = split_target(t)
        if found:
            lists = (lists or []) + found
    project = load(root, lists, allow_outside_paths, allow_pickle)
    if not project.shotlists:
        raise UserError("no shot lists to render", hint="add shots/<episode>.yaml or name one on the command line")
    jobs = [p.job for p in Planner(project, engine_override=engine).plan(shot_ids or None, kind)]
    if not jobs:
        raise UserError(f"no {kind or ''} shots to render".replace("  ", " "))
    runtime = Runtime.for_project(project, device=device, allow_pickle=allow_pickle,
                                  debug=os.environ.get("CINEKIT_DEBUG") == "1")
    out_dir = Path(out).resolve() if out else project.output_dir
    progress = RichProgress(len(jobs), plain=ci)
    try:
        outcomes = render_jobs(runtime, jobs, out_dir, fmt, force=force, fail_fast=fail_fast, progress=progress)
    finally:
        progress.close()
    console().print(summary_table(outcomes, out_dir))
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise typer.Exit(max(o.exit_code for o in failed))


def register(app: typer.Typer) -> None:
    shot_opt = typer.Option(None, "--shot", "-s", help="Only this shot id (repeatable).")
    engine_opt = typer.Option(None, "--engine", "-e", help="Engine for every shot: previz | puppet | diffusers.")
    out_opt = typer.Option(None, "--out", "-o", help="Output folder (default: `output` of cinekit.yaml).")
    force_opt = typer.Option(False, "--force", help="Overwrite files even if cinekit did not write them.")
    outside_opt = typer.Option(False, help="Let YAML paths point outside the project.")
    pickle_opt = typer.Option(False, help="Accept pickle model files (.ckpt/.bin/.pt): unsafe.")
    device_opt = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps")
    ci_opt = typer.Option(False, "--ci", help="Plain log lines, no progress bars.")
    fail_fast_opt = typer.Option(False, "--fail-fast", help="Stop at the first failing shot.")

    @app.command()
    def still(shotlist: Path = typer.Argument(..., help="Shot list YAML (or the project folder)."),
              shot: list[str] = shot_opt, engine: str = engine_opt, out: Path = out_opt, force: bool = force_opt,
              allow_outside_paths: bool = outside_opt, allow_pickle: bool = pickle_opt, device: str = device_opt,
              ci: bool = ci_opt, fail_fast: bool = fail_fast_opt):
        """Render storyboard panels (the list's still shots) as PNG."""
        _run([shotlist], kind="still", shot_ids=shot, engine=engine, out=out, fmt="mp4", force=force,
             fail_fast=fail_fast, ci=ci, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle, device=device)

    @app.command()
    def shot(shotlist: Path = typer.Argument(..., help="Shot list YAML (or the project folder)."),
             shot: list[str] = shot_opt, engine: str = engine_opt, out: Path = out_opt,
             format: str = typer.Option("mp4", "--format", "-f", help="mp4 | gif | png (a folder of frames)."),
             force: bool = force_opt, allow_outside_paths: bool = outside_opt, allow_pickle: bool = pickle_opt,
             device: str = device_opt, ci: bool = ci_opt, fail_fast: bool = fail_fast_opt):
        """Render animated clips (the list's clip shots)."""
        _run([shotlist], kind="clip", shot_ids=shot, engine=engine, out=out, fmt=format, force=force,
             fail_fast=fail_fast, ci=ci, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle, device=device)

    @app.command()
    def render(shotlists: list[Path] = typer.Argument(None, help="Shot lists (default: every shots/*.yaml)."),
               shot: list[str] = typer.Option(None, "--only", help="Only this shot id (repeatable)."),
               engine: str = engine_opt, out: Path = out_opt,
               format: str = typer.Option("mp4", "--format", "-f", help="Clip format: mp4 | gif | png."),
               force: bool = force_opt, allow_outside_paths: bool = outside_opt, allow_pickle: bool = pickle_opt,
               device: str = device_opt, ci: bool = ci_opt, fail_fast: bool = fail_fast_opt):
        """Render every shot (stills and clips) of the shot lists."""
        _run(list(shotlists or []), kind=None, shot_ids=shot, engine=engine, out=out, fmt=format, force=force,
             fail_fast=fail_fast, ci=ci, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle, device=device)
