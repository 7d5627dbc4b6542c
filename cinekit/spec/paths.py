"""The project boundary: every path cinekit reads or writes stays inside the project folder,
links included, unless the user passes ``--allow-outside-paths``.

Paths written in YAML (images, masks, motion files) are confined where they are validated
(``spec.validate``); this module covers the rest: the ``output:`` folder of cinekit.yaml and
the project's own files reached through a symbolic link (``characters/x.yaml -> /elsewhere``),
whose target is what would really be read. ``check`` and ``render`` both call
``boundary_problems``.
"""

from __future__ import annotations

from pathlib import Path

from cinekit.errors import Problem

HINT = "keep the project's files and its output inside the project folder, or pass --allow-outside-paths"
LINKED_FOLDERS = ("characters", "shots", "poses")


def inside(root: Path, path: Path) -> bool:
    """Is ``path`` (links resolved) inside ``root`` (links resolved)?"""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def boundary_problems(project) -> list[Problem]:
    """Located problems for an ``output:`` outside the project and project files linked from outside."""
    root = Path(project.root)
    problems = []
    output = (root / project.config.output).resolve()
    if not inside(root, output):
        line, col = project.config_doc.mark(("output",)) if project.config_doc is not None else (None, None)
        problems.append(Problem("cinekit.yaml", line, col, "output",
                                f"{project.config.output!r} points outside the project folder ({output})", HINT))
    for folder in LINKED_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.glob("*.yaml")):
            if not inside(root, path):
                rel = path.relative_to(root).as_posix()
                problems.append(Problem(rel, None, None, "", f"is a link to {path.resolve()}, outside the project folder",
                                        HINT))
    return problems


def outside_output_folders(out_dir: Path, folders) -> list[Path]:
    """Output subfolders that a link sends outside ``out_dir`` (a render would write there)."""
    out_dir = Path(out_dir)
    return [f for f in sorted(set(map(Path, folders))) if f.exists() and not inside(out_dir, f)]
