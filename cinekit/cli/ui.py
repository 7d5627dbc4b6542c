"""Console output: rich in a terminal, plain lines in CI (``--ci`` or no TTY)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cinekit.errors import Problem
from cinekit.render.run import Outcome, Progress


def console() -> Console:
    return Console(highlight=False, file=sys.stdout)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, file=sys.stderr)


def print_problems(problems: list[Problem]) -> None:
    err = err_console()
    for p in problems:
        colour = "yellow" if p.severity == "warning" else "red"
        err.print(f"[{colour}]{escape(p.format())}[/]", highlight=False, soft_wrap=True)


class RichProgress(Progress):
    """Overall bar (all shots, ETA) + the current shot's bar (frames or steps, ETA); plain lines in CI.

    With several jobs in flight (Ray), the shot bar shows the latest started one.
    """

    def __init__(self, total: int, plain: bool = False):
        self.plain = plain or not sys.stdout.isatty()
        self.total = total
        self.done = 0
        self.out = console()
        self._bars = None
        if not self.plain:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bars

            self._bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TimeRemainingColumn(), console=self.out, transient=True)
            self._overall = self._bars.add_task("all shots", total=total)
            self._current = self._bars.add_task("", total=1, visible=False)
            self._bars.start()

    def job_started(self, job, index, total):
        if self._bars:
            label = f"{job.output} ({job.engine}{'/' + job.model if job.model else ''}, {job.kind})"
            self._bars.reset(self._current, description=escape(label), completed=0, total=job.frames, visible=True)
        else:
            self.out.print(escape(f"[{index + 1}/{total}] {job.output} ({job.engine}, {job.kind}, {job.frames} frame(s))"))

    def job_progress(self, job, done, total):
        if self._bars:
            self._bars.update(self._current, completed=done, total=total)

    def job_finished(self, outcome: Outcome):
        self.done += 1
        if self._bars:
            self._bars.advance(self._overall)
        if outcome.status == "failed":
            err_console().print(f"[red]failed:[/] {escape(outcome.job.output)}: {escape(outcome.error or '')}",
                                highlight=False)
        elif self.plain:
            why = f", {outcome.reason}" if outcome.reason and outcome.status == "rendered" else ""
            self.out.print(escape(f"  {outcome.status}: {outcome.job.output} ({outcome.seconds:.2f} s{why})"))

    def waiting(self, holder) -> None:
        from cinekit.render.lock import describe

        err_console().print(escape(f"waiting: the output folder is locked by {describe(holder)}"), highlight=False)

    def close(self):
        if self._bars:
            self._bars.stop()


def summary_table(outcomes: list[Outcome], out_dir, seconds: float | None = None, max_rows: int = 40) -> Table:
    """One row per shot; past ``max_rows`` shots, cached ones are counted, not listed."""
    table = Table(title=f"renders in {out_dir}")
    for col in ("shot", "kind", "engine", "status", "time", "file"):
        table.add_column(col)
    shown = outcomes if len(outcomes) <= max_rows else [o for o in outcomes if o.status != "cached"]
    for o in shown:
        main = (o.record or {}).get("outputs", {}).get("main", "")
        colour = {"rendered": "green", "cached": "cyan", "failed": "red"}[o.status]
        table.add_row(escape(o.job.output), o.job.kind, o.job.engine, f"[{colour}]{o.status}[/]",
                      f"{o.seconds:.2f} s", escape(main))
    if len(shown) < len(outcomes):
        table.add_row(f"... {len(outcomes) - len(shown)} more", "", "", "[cyan]cached[/]", "", "")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("rendered", "cached", "failed")}
    total = seconds if seconds is not None else sum(o.seconds for o in outcomes)
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items()) + f", {total:.1f} s"
    return table


def print_failures(outcomes: list[Outcome]) -> None:
    """Every failed shot with its cause, after the summary (what a CI log reader looks for)."""
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return
    err = err_console()
    err.print(f"[red]{len(failed)} shot(s) failed:[/]", highlight=False)
    for o in failed:
        err.print(escape(f"  {o.job.shotlist}: {o.job.shot_id}: {(o.error or '').strip()}"), highlight=False)


def dry_run_table(plan, out_dir) -> Table:
    """``--dry-run``: each job, what it would do and why."""
    table = Table(title=f"plan for {out_dir} (dry run: nothing written)")
    for col in ("shot", "kind", "engine", "model", "action", "why"):
        table.add_column(col)
    for p in plan:
        action = "[green]render[/]" if p.run else "[cyan]skip[/]"
        table.add_row(escape(p.job.output), p.job.kind, p.job.engine, escape(p.job.model or "-"), action, escape(p.reason))
    n = sum(p.run for p in plan)
    table.caption = f"{n} to render, {len(plan) - n} cached"
    return table


def write_junit(path, outcomes: list[Outcome], seconds: float) -> None:
    """A JUnit XML report: one test case per shot (classname = shot list); failures with their cause."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from cinekit.render import writers

    failures = sum(o.status == "failed" for o in outcomes)
    suite = ET.Element("testsuite", name="cinekit render", tests=str(len(outcomes)), failures=str(failures),
                       errors="0", skipped="0", time=f"{seconds:.3f}")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=o.job.shotlist, name=o.job.shot_id,
                             time=f"{o.seconds:.3f}")
        if o.status == "failed":
            message = (o.error or "failed").strip()
            fail = ET.SubElement(case, "failure", message=message.splitlines()[0] if message else "failed",
                                 type=f"exit {o.exit_code}")
            fail.text = message
        else:
            ET.SubElement(case, "system-out").text = f"{o.status}: {o.job.output} ({o.reason})"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    data = ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
    path = Path(path)
    with writers.atomic_path(path) as tmp:
        tmp.write_text(data)
