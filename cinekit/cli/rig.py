"""`cinekit rig NAME --auto`: propose a character's rig on its reference and write it in its YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from cinekit.cli.options import project_opt


def _character_file(root: Path, name: str) -> Path:
    """``characters/*.yaml`` whose ``name:`` is ``name`` (the file name need not match)."""
    import yaml

    from cinekit.errors import UserError
    from cinekit.spec.diagnose import suggest

    names = {}
    for path in sorted((root / "characters").glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None
        key = data.get("name") if isinstance(data, dict) and isinstance(data.get("name"), str) else path.stem
        names.setdefault(key, path)
    if name not in names:
        raise UserError(f"unknown character {name!r}", hint=suggest(name, names) or "characters are characters/*.yaml")
    return names[name]


def _first_reference(char_file: Path) -> Path:
    import yaml

    from cinekit.errors import UserError

    data = yaml.safe_load(char_file.read_text(encoding="utf-8"))
    refs = data.get("references") if isinstance(data, dict) else None
    image = refs[0].get("image") if isinstance(refs, list) and refs and isinstance(refs[0], dict) else None
    if not isinstance(image, str):
        raise UserError(f"{char_file}: references: needs a first entry with image:",
                        hint="the rig is placed on the first reference image")
    path = (char_file.parent / image).resolve()
    if not path.is_file():
        raise UserError(f"{char_file}: references[0].image: {image} not found")
    return path


def _output_dir(root: Path) -> Path:
    import yaml

    try:
        config = yaml.safe_load((root / "cinekit.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    out = config.get("output") if isinstance(config, dict) else None
    return root / (out if isinstance(out, str) else "renders")


def register(app: typer.Typer) -> None:
    @app.command()
    def rig(
        name: str = typer.Argument(..., help="Character name."),
        auto: bool = typer.Option(False, "--auto", help="Find the joints on the first reference (mediapipe) and "
                                  "write them into the character's YAML."),
        out: Path = typer.Option(None, "--out", "-o", help="PNG of the rig over the art "
                                 "(default: <output>/rigs/NAME.png)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only report and draw; leave the YAML as it is."),
        project: Path = project_opt(),
    ):
        """A character's rig: `--auto` proposes one on its first reference, for you to adjust."""
        from cinekit.capture import mediapipe_graphs
        from cinekit.capture.rig_auto import BODY, MIN_BODY_JOINTS, draw_over, propose, write_rig
        from cinekit.cli.ui import console
        from cinekit.errors import UserError
        from cinekit.spec.project import find_root

        if not auto:
            raise typer.BadParameter("only --auto is available: it proposes a rig for you to adjust", param_hint="--auto")
        mediapipe_graphs.require("`cinekit rig --auto`")
        root = find_root(project or Path("."))
        char_file = _character_file(root, name)
        image = _first_reference(char_file)
        proposal = propose(image)
        picture = draw_over(image, proposal, out or _output_dir(root) / "rigs" / f"{name}.png")
        rel = lambda p: p.relative_to(root) if p.is_relative_to(root) else p  # noqa: E731
        if not proposal.has_body:
            seen = [j for j in BODY if j in proposal.found]
            raise UserError(
                f"found no body on {rel(image)}: {len(seen)} of the {len(BODY)} body joints "
                f"(at least {MIN_BODY_JOINTS} needed){': ' + ', '.join(seen) if seen else ''}; "
                f"{rel(char_file)} is unchanged (picture: {rel(picture)})",
                hint="the detector is trained on photos and realistic art; on stylised art mark the joints by hand "
                     "under rig: joints: (COCO-18 names, pixels on the first reference)")
        odd = proposal.implausible()
        if odd:
            raise UserError(
                f"found no plausible body on {rel(image)}: {'; '.join(odd[:3])}; {rel(char_file)} is unchanged "
                f"(picture: {rel(picture)})",
                hint="the detector is trained on photos and realistic art and was fooled by this one; mark the "
                     "joints by hand under rig: joints: (COCO-18 names, pixels on the first reference)")
        if dry_run:
            replaced, added = [], []
        else:
            replaced, added = write_rig(char_file, proposal,
                                        f"proposed by `cinekit rig {name} --auto` on {image.name}: adjust by hand")
        c = console()
        c.print(f"found {len(proposal.found)} of 18 joints on {rel(image)}"
                + (f"; not found: {', '.join(proposal.missing)}" if proposal.missing else ""))
        if not dry_run:
            c.print(f"wrote {len(replaced) + len(added)} joints into {rel(char_file)} "
                    f"({len(replaced)} replaced, {len(added)} added)")
        c.print(f"wrote {rel(picture)} (the rig over the art): check it, then adjust the YAML by hand")
