"""Pure, batched tensor geometry: cameras and rays, raymaps, latent folding, Sim(3) alignment,
pose smoothing and pointmaps. Every function works on any device in float32 and float64."""

from aether.geometry.cameras import (
    check_intrinsics,
    check_poses,
    check_rotation,
    convert_poses,
    intrinsics_inverse,
    invert_pose,
    pixel_grid,
    pixel_rays,
    relative_poses,
    world_rays,
)
from aether.geometry.folding import FOLD_LAYOUTS, fold_raymap, latent_frame_count, unfold_raymap
from aether.geometry.raymap import (
    RAY_ORIGIN_SCALE,
    RAYMAP_METHODS,
    cameras_to_raymap,
    raymap_to_cameras,
    signed_expm1,
    signed_log1p,
)

__all__ = [
    "FOLD_LAYOUTS",
    "RAYMAP_METHODS",
    "RAY_ORIGIN_SCALE",
    "cameras_to_raymap",
    "check_intrinsics",
    "check_poses",
    "check_rotation",
    "convert_poses",
    "fold_raymap",
    "intrinsics_inverse",
    "invert_pose",
    "latent_frame_count",
    "pixel_grid",
    "pixel_rays",
    "raymap_to_cameras",
    "relative_poses",
    "signed_expm1",
    "signed_log1p",
    "unfold_raymap",
    "world_rays",
]
