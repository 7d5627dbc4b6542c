"""How the planner fits a character's views to its art: which views a character has drawings
for, how a BVH motion is projected for them, and the sidecar note on what was kept.

Part of the planner (``cinekit.render.plan``); the names are re-exported there.
"""

from __future__ import annotations


def _projection(view: str, art: frozenset) -> tuple[str, bool]:
    """(BVH projection, follow the body's turn) for a character with drawings for the views
    in ``art``. Art of one view only is never shown in a profile (or a back) it has no drawing
    for: the camera faces the body and turns with it (``bvh.project``); with several views
    the camera stays put and each frame draws the view its yaw asks for (``pose.views``)."""
    if len(art) > 1:
        return view, False
    return ("side" if art <= {"side", "three_quarter"} else "front"), True


def art_views(spec) -> frozenset:
    """The views a character has drawings for that the puppet can pose: the first reference
    (the character's ``rig:``) and every reference with a ``rig:`` of its own."""
    out = {spec.references[0].view}
    out |= {r.view for r in spec.references[1:] if getattr(r, "rig", None) is not None}
    return frozenset(out)


def _view_note(name: str, art: frozenset, wanted: dict, asked: str, projected: str | None) -> str:
    """What the planner kept from the motion for a character's art, for the sidecar."""
    missing = {v: n for v, n in wanted.items() if n and v not in art}
    notes = []
    if projected is not None and asked in ("side", "auto") and projected != asked and "side" not in art:
        notes.append(f"{name} has {'/'.join(sorted(art))} art only: the 3-D motion is shown from the "
                     f"{projected} (not a side view), the camera turning with the body")
    if missing:
        frames = ", ".join(f"{n} {v}" for v, n in missing.items())
        notes.append(f"frames that ask for a view {name} has no art for ({frames}): drawn with the "
                     f"{'/'.join(sorted(art))} art, kept readable")
    return "; ".join(notes)
