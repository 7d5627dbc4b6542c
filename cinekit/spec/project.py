"""Load a whole project (cinekit.yaml, characters/*.yaml, shots/*.yaml) and validate it.

``load_project`` collects every problem of every file before raising one ``SpecError``:
users fix a project in one pass, not one error per run. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from cinekit.errors import Collector, Problem, SpecError, UserError
from cinekit.spec.diagnose import printable_problem, problems_from_validation
from cinekit.spec.models import CharacterSpec, ProjectConfig, ShotList
from cinekit.spec.yamlfile import YamlDoc, YamlSyntaxError, load_yaml

CONFIG_NAME = "cinekit.yaml"


@dataclass
class Project:
    root: Path
    config: ProjectConfig
    config_doc: YamlDoc | None
    characters: dict[str, tuple[CharacterSpec, Path]] = field(default_factory=dict)
    character_docs: dict[str, YamlDoc] = field(default_factory=dict)
    shotlists: dict[Path, ShotList] = field(default_factory=dict)
    shot_docs: dict[Path, YamlDoc] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    allow_outside_paths: bool = False
    allow_pickle: bool = False
    # names of character files that failed validation (reported there; shots naming them are
    # not reported again as "unknown character")
    broken_characters: set[str] = field(default_factory=set)

    @property
    def output_dir(self) -> Path:
        return (self.root / self.config.output).resolve()

    def rel(self, path: Path) -> str:
        """A path as shown to the user: relative to the project root when inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def find_root(path: Path) -> Path:
    """The folder holding cinekit.yaml, searching ``path`` and its parents."""
    path = Path(path).resolve()
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise UserError(f"no {CONFIG_NAME} found in {start} or its parents",
                    hint="run `cinekit init DIR` to create a project, or pass the project folder")


def _parse(path: Path, model: type[BaseModel], problems: Collector, rel: str):
    """Parse + validate one file; problems are collected, never raised here."""
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        problems.error(rel, exc.line, exc.col, "", exc.message, exc.hint)
        return None, None
    except OSError as exc:
        problems.error(rel, None, None, "", f"cannot read file: {exc.strerror or exc}")
        return None, None
    doc.path = Path(rel)
    if not isinstance(doc.data, dict):
        problems.error(rel, 1, 1, "", "expected a mapping at the top of the file")
        return doc, None
    try:
        return doc, model.model_validate(doc.data)
    except ValidationError as exc:
        found = problems_from_validation(doc, exc, model)
        for p in found:
            problems.add(p)
        if not found:  # never let a refused file pass silently
            problems.error(rel, 1, 1, "", f"invalid file: {exc.error_count()} schema error(s)")
        return doc, None


def _inside(project: Project, path: Path, problems: Collector, rel: str) -> bool:
    """A project file (a symlink, or a list named on the command line) must resolve inside
    the project like every path written in one, unless --allow-outside-paths."""
    if project.allow_outside_paths:
        return True
    try:
        Path(path).resolve().relative_to(project.root)
        return True
    except ValueError:
        problems.error(rel, None, None, "", f"resolves to {Path(path).resolve()}, outside the project folder",
                       "copy the file into the project, or pass --allow-outside-paths")
        return False


def _salvage(data: dict):
    """A ShotList of the shots that validate on their own (others become None placeholders).

    Used only to keep checking a file that has schema errors; such a project never renders.
    """
    from cinekit.spec.models import Shot, ShotDefaults

    try:
        defaults = ShotDefaults.model_validate(data.get("defaults") or {})
    except ValidationError:
        defaults = ShotDefaults()
    shots = []
    items = data.get("shots")
    for item in items if isinstance(items, list) else []:
        try:
            shots.append(Shot.model_validate(item))
        except ValidationError:
            shots.append(None)
    return ShotList.model_construct(defaults=defaults, shots=shots)


def load_project(path: Path | str = ".", shotlists: list[Path] | None = None, *,
                 allow_outside_paths: bool = False, allow_pickle: bool = False) -> Project:
    """Load and validate the project containing ``path``; raise SpecError listing every problem.

    ``shotlists``: the lists to load (default: every ``shots/*.yaml``).
    """
    from cinekit.spec.validate import validate_project  # cross-file checks

    root = find_root(Path(path))
    problems = Collector()
    config_doc, config = _parse(root / CONFIG_NAME, ProjectConfig, problems, CONFIG_NAME)
    project = Project(root=root, config=config or ProjectConfig(), config_doc=config_doc,
                      allow_outside_paths=allow_outside_paths, allow_pickle=allow_pickle)

    for char_path in sorted((root / "characters").glob("*.yaml")):
        rel = project.rel(char_path)
        if not _inside(project, char_path, problems, rel):
            continue
        doc, spec = _parse(char_path, CharacterSpec, problems, rel)
        if spec is None:
            name = doc.data.get("name") if doc is not None and isinstance(doc.data, dict) else None
            project.broken_characters.add(name if isinstance(name, str) else char_path.stem)
            continue
        if spec.name in project.characters:
            line, col = doc.mark(("name",))
            other = project.rel(project.characters[spec.name][1])
            problems.error(rel, line, col, "name", f"character {spec.name!r} is already defined in {other}",
                           "give each character a unique name")
            continue
        project.characters[spec.name] = (spec, char_path.resolve())
        project.character_docs[spec.name] = doc

    if shotlists is None:
        shotlists = sorted((root / "shots").glob("*.yaml"))
    for list_path in shotlists:
        list_path = Path(list_path).resolve()
        rel = project.rel(list_path)
        if not list_path.is_file():
            problems.error(rel, None, None, "", "shot list not found")
            continue
        if not _inside(project, list_path, problems, rel):
            continue
        doc, shot_list = _parse(list_path, ShotList, problems, rel)
        if shot_list is None and doc is not None and isinstance(doc.data, dict):
            shot_list = _salvage(doc.data)  # so cross-file checks still run on the valid shots
        if shot_list is not None:
            project.shotlists[list_path] = shot_list
            project.shot_docs[list_path] = doc

    validate_project(project, problems)
    problems.problems[:] = [printable_problem(p) for p in problems.problems]
    problems.problems.sort(key=lambda p: (p.path != CONFIG_NAME, p.path, p.line or 0, p.col or 0))
    project.warnings = problems.warnings
    if problems.errors:
        raise SpecError(problems.problems)
    return project
