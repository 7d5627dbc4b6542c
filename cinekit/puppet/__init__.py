"""The puppet: a character's own reference art cut into part layers and posed along its rig.

``parts`` cuts the figure along the rig (and paints in what the art hides), ``mesh``
triangulates each part, ``bind`` weights them, ``deform`` poses them per frame, ``raster``
draws them. Pure numpy/OpenCV, CPU, real time; ``cinekit.engines.puppet`` wires them into an
engine.
"""

from cinekit.puppet.bind import Binding, PartLayer, bind, draw_order
from cinekit.puppet.deform import deform_vertices, part_transforms
from cinekit.puppet.mesh import Mesh, build_mesh
from cinekit.puppet.raster import draw_part

__all__ = [
    "Binding", "Mesh", "PartLayer", "bind", "build_mesh", "deform_vertices", "draw_order", "draw_part",
    "part_transforms",
]
