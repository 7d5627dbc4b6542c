"""Reading an AnimatedDrawings ``char_cfg.yaml`` rig through its ``map:``, and the ``check``
that refuses a rig whose extra limbs the motion could not move (the I/O around ``rig_map``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from cinekit.errors import UserError
from cinekit.pose.rig_map import RigMapError, RigMapping, map_skeleton, unmapped_message


def read_skeleton(cfg_path: Path, read=None) -> list:
    """The ``skeleton`` list of a ``char_cfg.yaml``; ``RigMapError`` if there is none.

    ``read`` (path -> bytes) lets a render hash and parse the same bytes (its input snapshot)."""
    try:
        data = read(cfg_path) if read is not None else Path(cfg_path).read_bytes()
        cfg = yaml.safe_load(data.decode("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RigMapError(f"cannot read {Path(cfg_path).name}{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(cfg, dict) or "skeleton" not in cfg:
        raise RigMapError(f"{Path(cfg_path).name} has no 'skeleton' list (an AnimatedDrawings char_cfg.yaml has one)")
    return cfg["skeleton"]


def load_rig_mapping(cfg_path: Path, mapping: dict[str, str] | None = None, read=None) -> RigMapping:
    """``char_cfg.yaml`` + ``map:`` -> ``RigMapping``; a ``UserError`` naming the file otherwise."""
    try:
        return map_skeleton(read_skeleton(cfg_path, read), mapping)
    except RigMapError as exc:
        where = f"rig.map.{exc.key}" if exc.key else "rig.from"
        raise UserError(f"{cfg_path}: {where}: {exc}", hint=exc.hint) from None


def check_rig(check, doc, spec, spec_path: Path) -> None:
    """``cinekit check`` for a character's rig map: located errors through ``check.error``
    (``check`` is spec.validate's checker). Missing files are reported by the file check."""
    rig = spec.rig
    user_map = getattr(rig, "map", None) if rig is not None else None
    if rig is None or (rig.from_ is None and user_map is None):
        return
    if rig.from_ is None:
        check.error(doc, ("rig", "map"), "map: needs a rig read from a file (`from: char_cfg.yaml`)",
                    "with `joints:`, name the joints by their COCO-18 names instead")
        return
    cfg_path = (Path(spec_path).parent / rig.from_).resolve()
    if not cfg_path.is_file():
        return
    try:
        result = map_skeleton(read_skeleton(cfg_path), user_map)
    except RigMapError as exc:
        loc = ("rig", "map", exc.key) if exc.key else ("rig", "from")
        check.error(doc, loc, str(exc), exc.hint)
        return
    if result.unmapped:
        message, hint = unmapped_message(result)
        check.error(doc, ("rig", "from"), message, hint)
