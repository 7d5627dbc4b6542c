"""`cinekit train NAME`: a LoRA (or with --embedding a textual-inversion embedding) of a character."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cinekit.cli.options import project_opt


class _Bar:
    """A rich progress bar with the loss (plain lines when not a terminal)."""

    def __init__(self, total: int, plain: bool):
        from cinekit.cli.ui import console

        self.plain = plain or not sys.stdout.isatty()
        self.out = console()
        self.total = total
        self.every = max(1, total // 10)
        self._bars = None
        if not self.plain:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bars = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
                                  console=self.out, transient=True)
            self._task = self._bars.add_task("train", total=total, loss=float("nan"))
            self._bars.start()

    def __call__(self, step: int, total: int, loss: float) -> None:
        if self._bars is not None:
            self._bars.update(self._task, completed=step, loss=loss)
        elif step % self.every == 0 or step == total:
            self.out.print(f"step {step}/{total}  loss {loss:.4f}", highlight=False)

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = self._task = None


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        name: str = typer.Argument(..., help="Character name."),
        model: str = typer.Option(None, "--model", help="Model set of cinekit.yaml (default: the only sd15 set)."),
        steps: int = typer.Option(1000, "--steps", min=1, help="Optimizer steps."),
        rank: int = typer.Option(16, "--rank", min=1, max=256, help="LoRA rank."),
        out: Path = typer.Option(None, "--out", "-o", help="File to write (default: loras/NAME.safetensors, "
                                                         "embeddings/NAME.safetensors with --embedding)."),
        write: bool = typer.Option(False, "--write", help="Add the result to the character's YAML (lora: / embeddings:)."),
        embedding: bool = typer.Option(False, "--embedding", help="Textual inversion instead of a LoRA."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (images, captions, steps, memory) and stop."),
        lr: float = typer.Option(None, "--lr", help="Learning rate (default: 1e-4 LoRA, 5e-3 embedding)."),
        batch: int = typer.Option(1, "--batch", min=1, help="Images per step."),
        size: int = typer.Option(0, "--size", min=0, help="Training resolution (default: the model's, 512 for SD 1.5)."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of augmentation, noise and batches."),
        variants: int = typer.Option(8, "--variants", min=1, help="Augmented images per source image."),
        poses: int = typer.Option(6, "--poses", min=0, help="Puppet renders in new poses added as extra views."),
        prior: int = typer.Option(0, "--prior", min=0, help="Class images for prior preservation (0: off)."),
        conv: bool = typer.Option(False, "--conv", help="Also train the ResNet convolutions (kohya's LoCon)."),
        vectors: int = typer.Option(2, "--vectors", min=1, max=16, help="Embedding vectors (--embedding)."),
        sample_every: int = typer.Option(0, "--sample-every", min=0, help="Write a sample grid every K steps."),
        checkpoint_every: int = typer.Option(100, "--checkpoint-every", min=1, help="Save resumable state every N steps."),
        restart: bool = typer.Option(False, "--restart", help="Ignore a checkpoint of an earlier run."),
        grad_checkpointing: bool = typer.Option(None, "--grad-checkpointing/--no-grad-checkpointing",
                                                help="Recompute activations in the backward pass (default: on CUDA)."),
        project: Path = project_opt(),
        device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
        ci: bool = typer.Option(False, "--ci", help="Plain progress lines."),
        stop_after: int = typer.Option(None, "--stop-after", hidden=True, help="Stop after N steps (tests)."),
    ):
        """Train a LoRA (or an embedding) of a character from its references and puppet views."""
        from cinekit.cli.project import load
        from cinekit.cli.ui import console
        from cinekit.runtime import Runtime
        from cinekit.train.plan import CONV_TARGETS, TARGETS, TrainOptions
        from cinekit.train.run import train as run

        proj = load(project or Path("."))
        runtime = Runtime.for_project(proj, device=device)
        options = TrainOptions(steps=steps, rank=rank, lr=lr if lr is not None else (5e-3 if embedding else 1e-4),
                               batch=batch, size=size, seed=seed, variants=variants, puppet_poses=poses, prior=prior,
                               embedding=embedding, vectors=vectors, sample_every=sample_every,
                               checkpoint_every=checkpoint_every, grad_checkpointing=grad_checkpointing,
                               targets=TARGETS + (CONV_TARGETS if conv else ()))
        bar = None if dry_run else _Bar(steps, ci)
        try:
            outcome = run(runtime, name, options, model=model, out=out, write=write, dry_run=dry_run, progress=bar,
                          stop_after=stop_after, restart=restart)
        except KeyboardInterrupt:
            # Ctrl-C outside the step loop (loading, encoding, writing the file): nothing new to save
            if bar is not None:
                bar.close()
            console().print("interrupted: run the same command again to resume (from the last checkpoint, if any)",
                            highlight=False)
            raise typer.Exit(130) from None
        finally:
            if bar is not None:
                bar.close()
        if dry_run:
            typer.echo(outcome.plan)
            return
        loop = outcome.result.loop
        if outcome.result.path is None:
            if loop.interrupted is not None:
                import signal

                from cinekit.train.interrupt import exit_code

                console().print(f"interrupted ({signal.Signals(loop.interrupted).name}): saved a checkpoint at step "
                                f"{loop.steps}/{steps}; run the same command again to resume", highlight=False)
                raise typer.Exit(exit_code(loop.interrupted))
            console().print(f"stopped after step {loop.steps}/{steps}: run the same command again to resume")
            return
        k = max(1, len(loop.losses) // 10)
        first, last = sum(loop.losses[:k]) / k, sum(loop.losses[-k:]) / k
        console().print(f"wrote {outcome.result.path} ({loop.steps} steps"
                        + (f", resumed at {loop.resumed_from}" if loop.resumed_from else "")
                        + f", loss {first:.4f} -> {last:.4f}, {loop.steps_per_s:.2f} steps/s, {loop.optimizer})",
                        highlight=False)
        for p in outcome.result.samples[-1:]:
            console().print(f"samples: {p}", highlight=False)
        if write:
            what = "embeddings" if embedding else "lora"
            console().print(f"{outcome.prep.spec_path.name}: " + (f"added to `{what}:`" if outcome.written_to_yaml
                                                                     else f"already in `{what}:`"), highlight=False)
