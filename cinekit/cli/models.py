"""`cinekit models check | tiny`: the model sets of cinekit.yaml (diffusers engines)."""

from __future__ import annotations

from pathlib import Path

import typer

from cinekit.cli.ui import console

app = typer.Typer(no_args_is_help=True, help="Model sets for the diffusers engines: verify them, or write a tiny test set.")


def _config(project: Path | None):
    """(root, ProjectConfig) read from cinekit.yaml only (shots and characters are not needed here)."""
    from cinekit.errors import Collector
    from cinekit.spec.models import ProjectConfig
    from cinekit.spec.project import CONFIG_NAME, _parse, find_root

    root = find_root(project or Path("."))
    problems = Collector()
    _doc, config = _parse(root / CONFIG_NAME, ProjectConfig, problems, CONFIG_NAME)
    problems.raise_if_errors()
    return root, config


@app.command()
def check(project: Path = typer.Option(None, help="Project folder (default: the current one)."),
          allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept .ckpt/.bin/.pt files (pickle: unsafe).")):
    """Verify every configured model set: paths, formats and family (no model is run)."""
    from rich.table import Table

    from cinekit.engines.model_check import check_model_set

    root, config = _config(project)
    if not config.models:
        console().print("no model sets in cinekit.yaml (`models:`): nothing to check")
        return
    table = Table(title="model sets")
    for col in ("model", "family", "base", "status"):
        table.add_column(col)
    failed = 0
    found = []
    for name, ms in config.models.items():
        problems = check_model_set(name, ms, root, allow_pickle=allow_pickle)
        errors = [p for p in problems if p.severity == "error"]
        failed += bool(errors)
        found += problems
        table.add_row(name, ms.family, ms.base, "[red]%d problem(s)[/]" % len(errors) if errors else "[green]ok[/]")
    console().print(table)
    for p in found:
        console().print(p.format(), highlight=False, markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def tiny(folder: Path = typer.Argument(..., help="Folder to write the tiny model set into."),
         sdxl: bool = typer.Option(False, "--sdxl", help="Also write a tiny SDXL pipeline."),
         name: str = typer.Option("tiny", help="Model set name in the printed snippet.")):
    """Write a tiny random offline model set (smoke tests, CI) and print its `models:` snippet."""
    import yaml

    from cinekit.testing.tiny import modelset_dict, write_tiny_models

    models = write_tiny_models(folder, sdxl=sdxl)
    snippet = {"models": {name: modelset_dict(models, None)}}
    if models.sdxl is not None:
        snippet["models"][f"{name}-xl"] = {"family": "sdxl", "base": str(models.sdxl)}
    # plain echo: the YAML must not be wrapped or styled (it is meant to be pasted)
    typer.echo(f"# wrote {folder}: random weights, for smoke tests only (pictures are noise)")
    typer.echo(f"# LoRA: {models.lora}\n# embedding: {models.embedding} (token {models.embedding_token})")
    typer.echo(yaml.safe_dump(snippet, sort_keys=False), nl=False)
