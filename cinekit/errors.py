"""The one error hierarchy of cinekit; the CLI maps each type to a message and exit code.

Exit codes: 0 ok, 1 spec/user error, 2 usage, 3 engine/runtime failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One located finding in a user's file: rendered as ``path:line:col: field: message``."""

    path: str
    line: int | None
    col: int | None
    field: str
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" | "warning"

    def format(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        if self.severity == "warning":
            text = f"{where}: warning: {self.field}: {self.message}" if self.field else f"{where}: warning: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class CinekitError(Exception):
    """Base class; ``exit_code`` is what the CLI returns for it."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format(self) -> str:
        return self.message + (f"\n    hint: {self.hint}" if self.hint else "")


class UserError(CinekitError):
    """Bad input from the user (a file, a flag value): exit 1."""

    exit_code = 1


class SpecError(UserError):
    """One or more problems found while loading/validating the project files."""

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems]
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in the project files")

    def format(self) -> str:
        return "\n".join(p.format() for p in self.problems)


class EngineError(CinekitError):
    """An engine could not render (missing weights, out of memory, bad model files): exit 3."""

    exit_code = 3


class ModelError(EngineError):
    """A configured model cannot be found or loaded offline."""


@dataclass
class Collector:
    """Gathers problems so that every error is reported at once, not the first one only."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def error(self, path, line, col, fld, message, hint=None) -> None:
        self.add(Problem(str(path), line, col, fld, message, hint))

    def warn(self, path, line, col, fld, message, hint=None) -> None:
        self.add(Problem(str(path), line, col, fld, message, hint, severity="warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.problems)
