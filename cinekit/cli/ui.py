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
    """Overall bar + a bar for the current job (frames or steps) with ETA; plain lines in CI."""

    def __init__(self, total: int, plain: bool = False):
        self.plain = plain or not sys.stdout.isatty()
        self.total = total
        self.out = console()
        self._bars = None
        if not self.plain:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn, TimeRemainingColumn

            self._bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeRemainingColumn(), console=self.out, transient=True)
            self._overall = self._bars.add_task("all shots", total=total)
            self._current = self._bars.add_task("", total=1, visible=False)
            self._bars.start()

    def job_started(self, job, index, total):
        if self._bars:
            self._bars.update(self._current, description=f"{job.output} ({job.engine})", completed=0, total=1, visible=True)
        else:
            self.out.print(f"[{index + 1}/{total}] {job.output} ({job.engine}, {job.kind}, {job.frames} frame(s))")

    def job_progress(self, job, done, total):
        if self._bars:
            self._bars.update(self._current, completed=done, total=total)

    def job_finished(self, outcome: Outcome):
        if self._bars:
            self._bars.advance(self._overall)
        if outcome.status == "failed":
            err_console().print(f"[red]failed:[/] {outcome.job.output}: {outcome.error}", highlight=False)
        elif self.plain:
            self.out.print(f"  {outcome.status}: {outcome.job.output} ({outcome.seconds:.2f} s)")

    def close(self):
        if self._bars:
            self._bars.stop()


def summary_table(outcomes: list[Outcome], out_dir) -> Table:
    table = Table(title=f"renders in {out_dir}")
    for col in ("shot", "kind", "engine", "status", "time", "file"):
        table.add_column(col)
    for o in outcomes:
        main = (o.record or {}).get("outputs", {}).get("main", "")
        colour = {"rendered": "green", "cached": "cyan", "failed": "red"}[o.status]
        table.add_row(o.job.output, o.job.kind, o.job.engine, f"[{colour}]{o.status}[/]", f"{o.seconds:.2f} s", main)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("rendered", "cached", "failed")}
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items()) + f", {sum(o.seconds for o in outcomes):.1f} s"
    return table
