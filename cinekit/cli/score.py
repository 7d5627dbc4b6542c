"""`cinekit score` (consistency scores of any output) and `cinekit report` (the review page).

Nothing heavy is imported here: the scoring modules (OpenCV, torch for embeddings) load
when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _project_or_none(path: Path):
    """The project holding ``path`` (or the current folder), or None outside any project."""
    from cinekit.errors import UserError
    from cinekit.spec.project import find_root, load_project

    for start in (path, Path(".")):
        try:
            find_root(start)
        except UserError:
            continue
        return load_project(start)
    return None


def register(app: typer.Typer) -> None:
    from cinekit.cli.options import file_opt, hidden, out_opt, project_opt

    @app.command()
    def score(
        outputs: list[Path] = typer.Argument(..., help="Rendered PNG / GIF / MP4 files or PNG-frame folders."),
        character: str = typer.Option(None, "--character", "-c", help="Score only this character."),
        mask: Path = typer.Option(None, "--mask", help="Mask image of the region to score (white = region)."),
        reference: Path = typer.Option(None, "--reference", help="Reference image (RGBA) for files outside a project."),
        as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
        project_dir: Path = project_opt(),
    ):
        """Palette ΔE, identity similarity, flicker and warping error of outputs, checked against `gates:`."""
        from cinekit.cli.ui import console
        from cinekit.errors import UserError
        from cinekit.score.gates import check_gates, score_output

        if mask is not None and not mask.is_file():
            raise UserError(f"{mask}: mask not found")
        project = None if reference is not None else _project_or_none(project_dir or outputs[0])
        if character and project is None and reference is None:
            raise UserError(f"--character {character}: no cinekit.yaml here or above {outputs[0]}",
                            hint="run inside the project, or pass --reference IMAGE")
        gates = project.config.gates if project is not None else {}
        results = []
        for out in outputs:
            scores = score_output(out, project=project, character=character, mask=mask, reference=reference)
            scores["gates"] = [g.to_dict() for g in check_gates(scores, gates)] if gates else []
            results.append(scores)
        if as_json:
            typer.echo(json.dumps(results if len(results) > 1 else results[0], indent=2, sort_keys=True))
            return
        from rich.table import Table

        table = Table(title="consistency scores")
        for col in ("output", "character", "ΔE", "id cos", "flicker", "warp", "gates"):
            table.add_column(col)

        def fmt(v, d=3):
            return "-" if v is None else f"{v:.{d}f}"

        for r in results:
            fails = [g for g in r["gates"] if g["status"] == "fail"]
            verdict = ("[red]fail[/]: " + "; ".join(g["message"] for g in fails)) if fails else (
                "[green]pass[/]" if r["gates"] else "-")
            rows = list(r["characters"].items()) or [(None, {})]
            for i, (name, entry) in enumerate(rows):
                table.add_row(r["path"] if i == 0 else "", name or "-", fmt(entry.get("palette_delta_e"), 2),
                              fmt(entry.get("identity_cosine")), fmt(r["scores"].get("flicker")) if i == 0 else "",
                              fmt(r["scores"].get("warp_error")) if i == 0 else "", verdict if i == 0 else "")
        con = console()
        con.print(table)
        for r in results:
            for w in r["warnings"]:
                con.print(f"[yellow]warning:[/] {r['path']}: {w}", highlight=False)

    @app.command()
    def report(
        project_arg: Path = typer.Argument(None, help="Project folder (default: .; same as --project)."),
        project_dir: Path = project_opt(),
        out: Path = out_opt("Output folder whose renders the page shows (default: `output` of cinekit.yaml)."),
        page: Path = file_opt("Page to write (default: <out>/report.html)."),
        old_page: Path = hidden("--page"),
        compare: list[Path] = typer.Option(None, "--compare",
                                           help="Another output folder: its renders are the B side of the A/B compare."),
        no_scores: bool = typer.Option(False, "--no-scores", help="Skip scoring (faster; no colours, no gallery)."),
        ci: bool = typer.Option(False, "--ci", help="Plain output: no progress bar."),
    ):
        """Write a static review page of every shot list plus a contact sheet PNG per list."""
        import sys

        from rich.markup import escape

        from cinekit.cli.options import alias, split_out
        from cinekit.cli.project import load
        from cinekit.cli.ui import console, err_console
        from cinekit.errors import UserError
        from cinekit.score.report import build_report

        project = load(project_arg or project_dir or Path("."))
        page = alias(page, old_page, "--page", "--file")
        out, page = split_out(out, page)   # before 0.2, --out named the page; it now names the output folder
        for folder in [out, *(compare or [])]:
            if folder is not None and not folder.is_dir():
                raise UserError(f"{folder}: no such output folder", hint="give a folder `cinekit render --out` wrote")
        plain = ci or not sys.stderr.isatty()
        bars = task = None
        if not plain:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err_console(), transient=True)
            task = bars.add_task("collecting renders", total=None)
            bars.start()

        def progress(done: int, total: int, what: str) -> None:
            if bars is not None:
                bars.update(task, completed=done, total=total, description=what)

        try:
            rep = build_report(project, page, scores=not no_scores, out_dir=out, compare=tuple(compare or ()),
                               progress=progress)
        finally:
            if bars is not None:
                bars.stop()
        con = console()
        con.print(f"review page: {rep.html}")
        for sheet in rep.contact_sheets:
            con.print(f"contact sheet: {sheet}")
        from cinekit.score.report import WARNING_KINDS

        kinds: dict[str, list[str]] = {}
        for w in rep.warnings:
            kinds.setdefault(getattr(w, "kind", "other"), []).append(str(w))
        for kind, items in kinds.items():
            con.print(f"[yellow]{escape(kind)}[/] ({len(items)}): {escape(WARNING_KINDS.get(kind, ''))}", highlight=False)
            for text in items:
                con.print(f"  - {escape(text)}", highlight=False, soft_wrap=True)
        failed = rep.failed_gates
        con.print(f"{len(rep.shots)} shot(s), {len(rep.failing_shots)} failing gates, {len(rep.warnings)} warning(s), "
                  f"{len(failed)} failed gate(s)")
