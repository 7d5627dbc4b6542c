"""`cinekit sheet NAME`: a character's model sheet (turnaround + expressions, or rig + poses)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from cinekit.cli.options import alias, file_opt, hidden, project_opt

    @app.command()
    def sheet(
        name: str = typer.Argument(..., help="Character name."),
        project: Path = project_opt(),
        engine: str = typer.Option(None, "--engine", "-e", help="previz | puppet | diffusers (default: the still engine of cinekit.yaml)."),
        model: str = typer.Option(None, help="Model set (diffusers)."),
        file: Path = file_opt("PNG to write (default: <output>/sheets/NAME.png)."),
        old_out: Path = hidden("--out", "-o"),
        width: int = typer.Option(384, help="Panel width in pixels."),
        height: int = typer.Option(512, help="Panel height in pixels."),
        steps: int = typer.Option(None, help="Denoising steps (diffusers; default: cinekit.yaml's)."),
        seed: int = typer.Option(0, help="Seed of every panel."),
        device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
        allow_outside_paths: bool = typer.Option(False, "--allow-outside-paths",
                                                 help="Let YAML paths point outside the project."),
        allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                          help="Accept pickle model files (.ckpt/.bin/.pt): unsafe."),
    ):
        """Render a character's model sheet on one labelled PNG page."""
        from cinekit.cli.project import load
        from cinekit.cli.ui import console
        from cinekit.errors import UserError
        from cinekit.render.sheet import render_sheet
        from cinekit.runtime import Runtime

        if width % 8 or height % 8:
            raise UserError(f"{width}x{height}: panel sizes must be multiples of 8")
        out = alias(file, old_out, "--out", "--file")
        proj = load(project or Path("."), [], allow_outside_paths, allow_pickle)
        engine_name = engine or proj.config.engines.still
        runtime = Runtime.for_project(proj, device=device, allow_pickle=allow_pickle)
        target = out or proj.output_dir / "sheets" / f"{name}.png"
        path = render_sheet(runtime, name, engine_name, target, size=(width, height), steps=steps, model=model,
                            seed=seed)
        console().print(f"wrote {path}")
