"""`cinekit animatic`, `cinekit board`, `cinekit timeline`: hand an episode on to editors and board artists.

Each reads what `cinekit render` wrote (the sidecars under the output folder) and never
renders: a shot not rendered yet is an error that names it and the command that renders it.
"""

from __future__ import annotations

from pathlib import Path

import typer

_LIST_HELP = "Shot list YAML (or the project folder, when it has one list)."


def _episode(shotlist: Path | None, project: Path | None, renders: Path | None, old_renders: Path | None,
             hold: float, engine: str | None, allow_outside_paths: bool):
    from cinekit.cli.options import alias
    from cinekit.cli.project import load, split_target
    from cinekit.cli.ui import err_console
    from cinekit.studio.episode import load_episode, pick_list

    renders = alias(renders, old_renders, "--renders", "--out")
    shotlist = shotlist or project or Path(".")
    root, lists = split_target(shotlist)
    proj = load(root, lists, allow_outside_paths)
    ep = load_episode(proj, pick_list(proj, shotlist), renders, hold=hold, engine=engine)
    if ep.stale:
        err_console().print(f"[yellow]warning:[/] {ep.rel}: changed since rendered: {', '.join(ep.stale)} "
                            f"(cinekit render {ep.rel} brings them up to date)", highlight=False)
    return ep


def _parse_size(size: str | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{size!r}: give WIDTHxHEIGHT, e.g. 1280x720", param_hint="--size") from None
    if w < 16 or h < 16:
        raise typer.BadParameter(f"{size!r}: at least 16x16", param_hint="--size")
    return w, h


def register(app: typer.Typer) -> None:
    from cinekit.cli.options import file_opt, hidden, out_opt, project_opt, split_out

    renders_opt = out_opt("Output folder the renders are in (default: `output` of cinekit.yaml).")
    old_renders_opt = hidden("--renders")
    hold_opt = typer.Option(2.0, "--hold", help="Seconds each still is held (stills have no duration).")
    engine_opt = typer.Option(None, "--engine", "-e", help="Use the renders of this engine (default: the newest).")
    outside_opt = typer.Option(False, "--allow-outside-paths", help="Let YAML paths point outside the project.")

    @app.command()
    def animatic(
        shotlist: Path = typer.Argument(None, help=_LIST_HELP),
        file: Path = file_opt("Movie to write (default: <out>/<list>.animatic.mp4)."),
        format: str = typer.Option("mp4", "--format", "-f", help="mp4 (H.264 review) | prores (MOV for editors) "
                                   "| png (a folder of frames + audio.wav) | exr (half-float linear frames, needs openexr)."),
        fps: float = typer.Option(None, "--fps", help="Frame rate (default: the list's fps); clips are resampled."),
        size: str = typer.Option(None, "--size", help="WIDTHxHEIGHT (default: the first shot's size)."),
        slate: float = typer.Option(0.0, "--slate", help="Seconds of title card before each shot (0: none)."),
        start_timecode: str = typer.Option("00:00:00:00", "--start-timecode", help="Timecode of the first frame."),
        burn_in: bool = typer.Option(True, "--burn-in/--clean", help="Burn in slate band and timecode (default) "
                                     "or write the clean picture."),
        hold: float = hold_opt, engine: str = engine_opt, renders: Path = renders_opt,
        project: Path = project_opt(), old_renders: Path = old_renders_opt, allow_outside_paths: bool = outside_opt,
    ):
        """One movie of the episode in shot order: stills held, clips resampled, timecode, slates, audio."""
        import time

        from cinekit.cli.ui import console
        from cinekit.studio.animatic import default_path, write_animatic

        start = time.perf_counter()
        renders, file = split_out(renders, file)
        ep = _episode(shotlist, project, renders, old_renders, hold, engine, allow_outside_paths)
        res = write_animatic(ep, file or default_path(ep, format), fmt=format, fps=fps, size=_parse_size(size),
                             slate=slate, start_tc=start_timecode, burn_in=burn_in)
        console().print(f"wrote {res.path} ({len(res.cuts)} shots, {res.frames} frames at {res.fps:g} fps = "
                        f"{res.seconds:.2f} s, {res.size[0]}x{res.size[1]}{', with audio' if res.audio else ''}; "
                        f"{time.perf_counter() - start:.1f} s)", markup=False)

    @app.command()
    def board(
        shotlist: Path = typer.Argument(None, help=_LIST_HELP),
        pdf: bool = typer.Option(True, "--pdf", help="Write a PDF (the board's format; the default)."),
        file: Path = file_opt("PDF to write (default: <out>/<list>.board.pdf)."),
        panels: int = typer.Option(6, "--panels", help="Panels a page: 3, 4, 5 or 6."),
        hold: float = hold_opt, engine: str = engine_opt, renders: Path = renders_opt,
        project: Path = project_opt(), old_renders: Path = old_renders_opt, allow_outside_paths: bool = outside_opt,
    ):
        """Storyboard pages: each shot's panel with id, duration, camera, action and dialogue notes."""
        from cinekit.cli.ui import console
        from cinekit.studio.board import default_path, write_board

        renders, file = split_out(renders, file)
        ep = _episode(shotlist, project, renders, old_renders, hold, engine, allow_outside_paths)
        res = write_board(ep, file or default_path(ep), panels=panels)
        console().print(f"wrote {res.path} ({res.panels} panels on {res.pages} page(s))", markup=False)

    @app.command()
    def timeline(
        shotlist: Path = typer.Argument(None, help=_LIST_HELP),
        file: Path = file_opt("OpenTimelineIO file to write (default: <out>/<list>.otio)."),
        otio: Path = hidden("--otio"),
        fps: float = typer.Option(None, "--fps", help="Timeline rate (default: the list's fps)."),
        start_timecode: str = typer.Option("00:00:00:00", "--start-timecode", help="Timecode of the first frame."),
        hold: float = hold_opt, engine: str = engine_opt, renders: Path = renders_opt,
        project: Path = project_opt(), old_renders: Path = old_renders_opt, allow_outside_paths: bool = outside_opt,
    ):
        """Editorial timeline (OpenTimelineIO): a clip per shot on the rendered files, markers with ids and prompts."""
        from cinekit.cli.options import alias
        from cinekit.cli.ui import console
        from cinekit.studio.timeline import default_path, write_timeline

        renders, file = split_out(renders, file)
        file = alias(file, otio, "--otio", "--file")
        ep = _episode(shotlist, project, renders, old_renders, hold, engine, allow_outside_paths)
        path = write_timeline(ep, file or default_path(ep), fps=fps, start_tc=start_timecode)
        console().print(f"wrote {path} ({len(ep.shots)} clips, {ep.seconds:.2f} s; media paths relative to "
                        f"{ep.project.root.name}/)", markup=False)
