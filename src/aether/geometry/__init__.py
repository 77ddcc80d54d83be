"""Pure, batched tensor geometry: cameras and rays, raymaps, latent folding, Sim(3) alignment,
pose smoothing and pointmaps. Every function works on any device in float32 and float64."""

from aether.geometry.alignment import (
    DEPTH_ALIGN_MODES,
    align_depth_lstsq,
    align_poses_sim3,
    align_trajectory_sim3,
    umeyama,
)
from aether.geometry.cameras import (
    check_intrinsics,
    check_poses,
    check_rotation,
    convert_poses,
    intrinsics_inverse,
    invert_pose,
    mirror_poses,
    pixel_grid,
    pixel_rays,
    relative_poses,
    resize_intrinsics,
    reverse_poses,
    world_rays,
)
from aether.geometry.depth import MIN_DISPARITY, depth_to_disparity, disparity_to_depth, disparity_validity
from aether.geometry.folding import FOLD_LAYOUTS, fold_frames, fold_raymap, latent_frame_count, unfold_raymap
from aether.geometry.framing import cover_size, crop_origin
from aether.geometry.pointmaps import depth_edge_mask, depth_to_points
from aether.geometry.raymap import (
    RAY_ORIGIN_SCALE,
    RAYMAP_METHODS,
    cameras_to_raymap,
    raymap_origins,
    raymap_to_cameras,
    signed_expm1,
    signed_log1p,
)
from aether.geometry.smoothing import (
    interpolate_poses,
    kalman_smoother_matrix,
    quaternion_slerp,
    smooth_poses_gaussian,
    smooth_poses_kalman,
)
from aether.geometry.splatting import SplatOutput, splat_points

__all__ = [
    "MIN_DISPARITY",
    "depth_to_disparity",
    "disparity_to_depth",
    "disparity_validity",
    "resize_intrinsics",
    "DEPTH_ALIGN_MODES",
    "align_depth_lstsq",
    "align_poses_sim3",
    "align_trajectory_sim3",
    "cover_size",
    "crop_origin",
    "depth_edge_mask",
    "depth_to_points",
    "interpolate_poses",
    "kalman_smoother_matrix",
    "quaternion_slerp",
    "smooth_poses_gaussian",
    "smooth_poses_kalman",
    "umeyama",
    "FOLD_LAYOUTS",
    "RAYMAP_METHODS",
    "RAY_ORIGIN_SCALE",
    "cameras_to_raymap",
    "raymap_origins",
    "check_intrinsics",
    "check_poses",
    "check_rotation",
    "convert_poses",
    "fold_frames",
    "fold_raymap",
    "intrinsics_inverse",
    "invert_pose",
    "latent_frame_count",
    "pixel_grid",
    "pixel_rays",
    "raymap_to_cameras",
    "mirror_poses",
    "relative_poses",
    "reverse_poses",
    "signed_expm1",
    "signed_log1p",
    "unfold_raymap",
    "world_rays",
    "SplatOutput",
    "splat_points",
]
