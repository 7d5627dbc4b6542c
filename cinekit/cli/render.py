"""`cinekit still`, `cinekit shot` and `cinekit render`: plan, skip what is up to date, render, summarise.

Every command renders through ``render_batch``: a lock on the output folder, content keys,
``manifest.json``. ``render`` adds ``--dry-run``, ``--reproduce``, ``--junit`` and
``--executor ray``.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cinekit.cli.project import load, split_target
from cinekit.cli.ui import (
    RichProgress,
    console,
    dry_run_table,
    err_console,
    print_failures,
    summary_table,
    write_junit,
)
from cinekit.errors import UserError

CLIP_FORMATS = ("mp4", "gif", "png")


def _project(targets: list[Path], allow_outside_paths: bool, allow_pickle: bool):
    lists: list[Path] | None = None
    root = Path(".")
    for t in targets or [Path(".")]:
        root, found = split_target(t)
        if found:
            lists = (lists or []) + found
    project = load(root, lists, allow_outside_paths, allow_pickle)
    if not allow_outside_paths:  # `output:` and linked project files stay inside the project
        from cinekit.errors import SpecError
        from cinekit.spec.paths import boundary_problems

        problems = boundary_problems(project)
        if problems:
            raise SpecError(problems)
    return project


def _runtime(project, device: str, allow_pickle: bool):
    from cinekit.runtime import Runtime

    return Runtime.for_project(project, device=device, allow_pickle=allow_pickle,
                               debug=os.environ.get("CINEKIT_DEBUG") == "1")


def _failed_outcome(project, failure):
    """A shot that could not be planned, as a failed outcome (listed and counted like the others)."""
    import numpy as np

    from cinekit.job import Job
    from cinekit.render.run import Outcome

    shot = failure.shot
    job = Job(shot_id=shot.id, shotlist=project.rel(failure.shotlist), kind=shot.kind, engine=shot.engine or "-",
              width=0, height=0, fps=1.0, frames=0, seed=0, steps=0, guidance=0.0, prompt="", negative="",
              characters=(), pose=np.zeros((0, 0, 18, 2)), output=f"{Path(failure.shotlist).stem}/{shot.id}")
    return Outcome(job, "failed", error=failure.error, exit_code=failure.exit_code, reason="cannot plan")


def _run(targets: list[Path], *, kind: str | None, shot_ids: list[str], engine: str | None, out: Path | None,
         fmt: str, force: bool, fail_fast: bool, ci: bool, allow_outside_paths: bool, allow_pickle: bool,
         device: str, dry_run: bool = False, junit: Path | None = None, executor: str = "local",
         address: str | None = None, wait: bool = False) -> None:
    import time

    from cinekit.render.plan import Planner, ShotFailure
    from cinekit.render.run import plan_batch, render_batch

    started = time.perf_counter()  # the summary reports the command's wall time, not the batch's
    if fmt not in CLIP_FORMATS:
        raise typer.BadParameter(f"{fmt!r}: choose one of {', '.join(CLIP_FORMATS)}", param_hint="--format")
    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"{executor!r}: choose local or ray", param_hint="--executor")
    project = _project(targets, allow_outside_paths, allow_pickle)
    if not project.shotlists:
        raise UserError("no shot lists to render", hint="add shots/<episode>.yaml or name one on the command line")
    runtime = _runtime(project, device, allow_pickle)
    planner = Planner(project, engine_override=engine, files=runtime.files, cache_dir=runtime.cache_dir,
                      debug=runtime.debug)
    items = planner.plan_all(shot_ids or None, kind)
    failures = [i for i in items if isinstance(i, ShotFailure)]
    if failures and fail_fast:
        from cinekit.errors import CinekitError, EngineError

        first = failures[0].exception
        raise first if isinstance(first, CinekitError) else EngineError(failures[0].error)
    jobs = [i.job for i in items if not isinstance(i, ShotFailure)]
    if not items:
        raise UserError(f"no {kind or ''} shots to render".replace("  ", " "))
    out_dir = Path(out).resolve() if out else project.output_dir
    if dry_run:
        plan = plan_batch(project, jobs, out_dir, fmt, force=force, digests=runtime.files)
        if ci:
            for p in plan:
                console().print(f"{'render' if p.run else 'skip  '} {p.job.output} ({p.job.engine}): {p.reason}",
                                markup=False)
            for f in failures:
                console().print(f"fail   {_failed_outcome(project, f).job.output}: {f.error}", markup=False)
            console().print(f"{sum(p.run for p in plan)} to render, {sum(not p.run for p in plan)} cached"
                            + (f", {len(failures)} cannot be planned" if failures else ""), markup=False)
        else:
            console().print(dry_run_table(plan, out_dir))
            print_failures([_failed_outcome(project, f) for f in failures])
        return
    runtime.out_dir = out_dir  # where earlier shots are found (continue_from), also with --out
    from cinekit.render.executors import make_executor

    progress = RichProgress(len(items), plain=ci)
    warn = lambda message: err_console().print(f"[yellow]warning:[/] {message}", highlight=False)  # noqa: E731
    for f in failures:
        progress.job_finished(_failed_outcome(project, f))
    try:
        report = render_batch(runtime, jobs, out_dir, fmt, force=force, fail_fast=fail_fast, progress=progress,
                              executor=make_executor(executor, runtime, address, warn=warn), wait=wait,
                              on_wait=progress.waiting, gates=ci)
    finally:
        progress.close()
    if report.lock_taken_over:
        from cinekit.render.lock import describe

        warn(f"took over the lock left by {describe(report.lock_taken_over)}, which is gone")
    by_job = {id(o.job): o for o in report.outcomes}
    outcomes = [_failed_outcome(project, i) if isinstance(i, ShotFailure) else by_job[id(i.job)]
                for i in items if isinstance(i, ShotFailure) or id(i.job) in by_job]
    seconds = time.perf_counter() - started
    console().print(summary_table(outcomes, out_dir, seconds))
    print_failures(outcomes)
    if junit:
        write_junit(junit, outcomes, seconds)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise typer.Exit(max(o.exit_code for o in failed))


def _reproduce(output: Path, *, out: Path | None, allow_outside_paths: bool, allow_pickle: bool, device: str,
               project: Path | None = None) -> None:
    from cinekit.render.reproduce import find_sidecar, reproduce
    from cinekit.spec.project import find_root

    output = Path(output)
    if not output.exists():
        raise UserError(f"{output}: no such file or folder")
    find_sidecar(output)
    try:
        root = find_root(Path(project or "."))
    except UserError:
        root = find_root(output)
    project = load(root, None, allow_outside_paths, allow_pickle)
    rep = reproduce(_runtime(project, device, allow_pickle), output, keep=Path(out).resolve() if out else None)
    for name in rep.changed_inputs:
        err_console().print(f"[yellow]warning:[/] input {name} changed since {output.name} was rendered",
                            highlight=False)
    for name, (old, new) in rep.files.items():
        state = "identical" if old == new else "DIFFERENT"
        console().print(f"{state}: {name} (recorded {old[:12]}, now {new[:12]})", markup=False)
    if rep.folder:
        console().print(f"reproduction written to {rep.folder}", markup=False)
    if rep.identical:
        console().print(f"reproduced {output}: byte-identical", markup=False)
    else:
        err_console().print(f"[red]not reproduced:[/] {output} differs from its re-render", highlight=False)
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    from cinekit.cli.options import alias, hidden, project_opt

    shot_opt = typer.Option(None, "--shot", "-s", help="Only this shot id (repeatable).")
    engine_opt = typer.Option(None, "--engine", "-e", help="Engine for every shot: previz | puppet | diffusers.")
    out_opt = typer.Option(None, "--out", "-o", help="Output folder (default: `output` of cinekit.yaml).")
    force_opt = typer.Option(False, "--force", help="Render even up-to-date shots; overwrite files cinekit did not write.")
    outside_opt = typer.Option(False, "--allow-outside-paths", help="Let YAML paths point outside the project.")
    pickle_opt = typer.Option(False, "--allow-pickle", help="Accept pickle model files (.ckpt/.bin/.pt): unsafe.")
    device_opt = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps")
    ci_opt = typer.Option(False, "--ci", help="Plain log lines, no progress bars.")
    fail_fast_opt = typer.Option(False, "--fail-fast", help="Stop at the first failing shot (default: render the "
                                 "others, list the failures at the end, exit non-zero).")
    wait_opt = typer.Option(False, "--wait", help="If another render holds the output folder, wait for it.")

    @app.command()
    def still(shotlist: Path = typer.Argument(None, help="Shot list YAML (default: every list of the project)."),
              project: Path = project_opt(), shot: list[str] = shot_opt, engine: str = engine_opt, out: Path = out_opt, force: bool = force_opt,
              allow_outside_paths: bool = outside_opt, allow_pickle: bool = pickle_opt, device: str = device_opt,
              ci: bool = ci_opt, fail_fast: bool = fail_fast_opt, wait: bool = wait_opt):
        """Render storyboard panels (the list's still shots) as PNG."""
        _run([shotlist or project or Path(".")], kind="still", shot_ids=shot, engine=engine, out=out, fmt="mp4", force=force,
             fail_fast=fail_fast, ci=ci, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle,
             device=device, wait=wait)

    @app.command()
    def shot(shotlist: Path = typer.Argument(None, help="Shot list YAML (default: every list of the project)."),
             project: Path = project_opt(), shot: list[str] = shot_opt, engine: str = engine_opt, out: Path = out_opt,
             format: str = typer.Option("mp4", "--format", "-f", help="mp4 | gif | png (a folder of frames)."),
             force: bool = force_opt, allow_outside_paths: bool = outside_opt, allow_pickle: bool = pickle_opt,
             device: str = device_opt, ci: bool = ci_opt, fail_fast: bool = fail_fast_opt, wait: bool = wait_opt):
        """Render animated clips (the list's clip shots)."""
        _run([shotlist or project or Path(".")], kind="clip", shot_ids=shot, engine=engine, out=out, fmt=format, force=force,
             fail_fast=fail_fast, ci=ci, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle,
             device=device, wait=wait)

    @app.command()
    def render(shotlists: list[Path] = typer.Argument(None, help="Shot lists (default: every shots/*.yaml)."),
               project: Path = project_opt(), shot: list[str] = shot_opt, only: list[str] = hidden("--only"),
               engine: str = engine_opt, out: Path = out_opt,
               format: str = typer.Option("mp4", "--format", "-f", help="Clip format: mp4 | gif | png."),
               force: bool = force_opt, allow_outside_paths: bool = outside_opt, allow_pickle: bool = pickle_opt,
               device: str = device_opt, ci: bool = ci_opt, fail_fast: bool = fail_fast_opt, wait: bool = wait_opt,
               dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and why each shot would (not) render."),
               junit: Path = typer.Option(None, "--junit", help="Write a JUnit XML report (one test case per shot)."),
               executor: str = typer.Option("local", "--executor", help="local | ray"),
               address: str = typer.Option(None, "--address", help="Ray cluster address (with --executor ray)."),
               reproduce: Path = typer.Option(None, "--reproduce", help="Re-render OUTPUT from its sidecar record "
                                              "and report whether the bytes match (--out keeps the new files).")):
        """Render every shot (stills and clips) of the shot lists; skip what is up to date."""
        shot = alias(shot, only, "--only", "--shot")
        if reproduce is not None:
            _reproduce(reproduce, out=out, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle,
                       device=device, project=project)
            return
        _run(list(shotlists or [project or Path(".")]), kind=None, shot_ids=shot, engine=engine, out=out, fmt=format, force=force,
             fail_fast=fail_fast, ci=ci, allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle,
             device=device, dry_run=dry_run, junit=junit, executor=executor, address=address, wait=wait)
