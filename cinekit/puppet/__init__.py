"""The puppet: a character's own reference art deformed along its rig.

``mesh`` triangulates the reference mask, ``bind`` skins the mesh to the rig's parts,
``deform`` poses it per frame, ``raster`` draws the textured mesh. Pure numpy/OpenCV, CPU,
real time; ``cinekit.engines.puppet`` wires them into an engine.
"""

from cinekit.puppet.bind import Binding, bind
from cinekit.puppet.deform import deform_vertices, part_transforms
from cinekit.puppet.mesh import Mesh, build_mesh
from cinekit.puppet.raster import Texture, draw_layers

__all__ = [
    "Binding", "Mesh", "Texture", "bind", "build_mesh", "deform_vertices", "draw_layers",
    "part_transforms",
]
