"""The puppet: a character's own reference art cut into part layers and posed along its rig.

``parts`` cuts the figure along the rig (and paints in what the art hides), ``mesh``
triangulates each part, ``bind`` weights them, ``deform`` poses them per frame, ``raster``
draws them. Pure numpy/OpenCV, CPU, real time; ``cinekit.engines.puppet`` wires them into an
engine. The names below load lazily: ``cinekit check`` reads ``part_map`` without OpenCV.
"""

from importlib import import_module

_WHERE = {
    "Binding": "bind", "PartLayer": "bind", "bind": "bind", "draw_order": "bind",
    "deform_vertices": "deform", "part_transforms": "deform",
    "Mesh": "mesh", "build_mesh": "mesh", "draw_part": "raster",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"cinekit.puppet.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'cinekit.puppet' has no attribute {name!r}")
