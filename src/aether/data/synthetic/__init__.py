"""A small synthetic 4D world: analytic scenes rendered to RGB-D video with exact geometry.

Scenes are made of analytic primitives (ground planes, boxes, inside-out boxes for room shells,
spheres, vertical cylinders) arranged as rooms, corridors and streets. Surfaces carry procedural
solid textures (value noise, checkers, stripes, gradients) with Lambertian shading. Objects of the
classes "person", "car" and "animal" move on their own paths; everything else is static.

World frame: z up, ground at z = 0. Cameras are OpenCV (x right, y down, z forward) and ``c2w``
maps camera to world coordinates.

One module per concern, each importing only those before it:

- :mod:`~aether.data.synthetic.raycast`: the primitive table (:class:`Scene`) and ray casting;
- :mod:`~aether.data.synthetic.textures`: procedural textures;
- :mod:`~aether.data.synthetic.scenes`: scene building (rooms, corridors, streets, their objects);
- :mod:`~aether.data.synthetic.cameras`: camera paths;
- :mod:`~aether.data.synthetic.clips`: shading and clip rendering.
"""

from __future__ import annotations

from aether.data.synthetic.cameras import camera_trajectory, look_at
from aether.data.synthetic.clips import SyntheticClip, clips_batch, render_clip, render_frames
from aether.data.synthetic.raycast import HORIZON, Scene
from aether.data.synthetic.scenes import CLASSES, DYNAMIC_CLASSES, build_scene
from aether.data.synthetic_names import SCENES, TRAJECTORIES

__all__ = [
    "CLASSES",
    "DYNAMIC_CLASSES",
    "HORIZON",
    "SCENES",
    "TRAJECTORIES",
    "Scene",
    "SyntheticClip",
    "build_scene",
    "camera_trajectory",
    "clips_batch",
    "look_at",
    "render_clip",
    "render_frames",
]
