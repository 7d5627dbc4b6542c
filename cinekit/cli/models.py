"""`cinekit models check | tiny`: the model sets of cinekit.yaml (diffusers engines)."""

from __future__ import annotations

from pathlib import Path

import typer

from cinekit.cli.options import project_opt
from cinekit.cli.ui import console

app = typer.Typer(no_args_is_help=True, help="Model sets for the diffusers engines: verify them, or write a tiny test set.")


def _config(project: Path | None):
    """(root, ProjectConfig, its YamlDoc) read from cinekit.yaml only."""
    from cinekit.errors import Collector
    from cinekit.spec.models import ProjectConfig
    from cinekit.spec.project import CONFIG_NAME, _parse, find_root

    root = find_root(project or Path("."))
    problems = Collector()
    doc, config = _parse(root / CONFIG_NAME, ProjectConfig, problems, CONFIG_NAME)
    problems.raise_if_errors()
    return root, config, doc


def _problems(root: Path, config, doc, allow_pickle: bool):
    """Problems of every model set, with what the shots ask of them when the project loads."""
    from cinekit.engines.model_check import check_model_set
    from cinekit.engines.project_models import check_project_models, relocate
    from cinekit.errors import SpecError
    from cinekit.spec.project import load_project

    try:
        project = load_project(root, allow_pickle=allow_pickle)
    except SpecError:       # shots or characters have errors (`cinekit check` lists them): sets alone
        return [relocate(p, doc) for name, ms in config.models.items()
                for p in check_model_set(name, ms, root, allow_pickle=allow_pickle)]
    return check_project_models(project, allow_pickle=allow_pickle, unused_as_errors=True)


@app.command()
def check(project: Path = project_opt(),
          allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept .ckpt/.bin/.pt files (pickle: unsafe).")):
    """Verify every model set: paths, formats, architectures, and what the shots need (no model is run)."""
    from rich.table import Table

    root, config, doc = _config(project)
    if not config.models:
        console().print("no model sets in cinekit.yaml (`models:`): nothing to check")
        return
    found = _problems(root, config, doc, allow_pickle)
    table = Table(title="model sets")
    for col in ("model", "family", "base", "status"):
        table.add_column(col)
    failed = 0
    for name, ms in config.models.items():
        errors = [p for p in found if p.severity == "error" and p.field.split(".")[:2] == ["models", name]]
        failed += bool(errors)
        table.add_row(name, ms.family, ms.base, "[red]%d problem(s)[/]" % len(errors) if errors else "[green]ok[/]")
    console().print(table)
    for p in found:
        console().print(p.format(), highlight=False, markup=False, soft_wrap=True)
    if any(p.severity == "error" for p in found):
        raise typer.Exit(1)


@app.command()
def tiny(folder: Path = typer.Argument(..., help="Folder to write the tiny model set into."),
         sdxl: bool = typer.Option(False, "--sdxl", help="Also write a tiny SDXL pipeline."),
         single_file: bool = typer.Option(False, "--single-file",
                                          help="Also write the models as community single files (checkpoint, "
                                               "ControlNet, motion module, kohya LoRAs) and a model set using them."),
         name: str = typer.Option("tiny", help="Model set name in the printed snippet.")):
    """Write a tiny random offline model set (smoke tests, CI) and print its `models:` snippet."""
    import yaml

    from cinekit.testing.tiny import modelset_dict, write_tiny_models

    models = write_tiny_models(folder, sdxl=sdxl, single_file=single_file)
    snippet = {"models": {name: modelset_dict(models, None)}}
    if models.sdxl is not None:
        snippet["models"][f"{name}-xl"] = {"family": "sdxl", "base": str(models.sdxl)}
    if models.single is not None:
        from cinekit.testing.tiny_single import modelset_single

        snippet["models"][f"{name}-single"] = modelset_single(models.single)
        if models.single.sdxl is not None:
            snippet["models"][f"{name}-single-xl"] = {"family": "sdxl", "base": str(models.single.sdxl),
                                                      "config": str(models.single.configs)}
        typer.echo(f"# kohya LoRAs: {', '.join(str(p) for p in models.single.loras)}")
    # plain echo: the YAML must not be wrapped or styled (it is meant to be pasted)
    typer.echo(f"# wrote {folder}: random weights, for smoke tests only (pictures are noise)")
    typer.echo(f"# LoRA: {models.lora}\n# embedding: {models.embedding} (token {models.embedding_token})")
    typer.echo(yaml.safe_dump(snippet, sort_keys=False), nl=False)
