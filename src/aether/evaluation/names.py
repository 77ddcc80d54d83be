"""The names the benchmarks are chosen by (no heavy imports: the ``aether bench`` parser uses them)."""

BENCHMARKS = ("video-depth", "camera-pose", "prediction", "planning", "camera-control")
BASELINE_BENCHMARKS = ("prediction",)
"""The benchmarks the CogVideoX image-to-video baseline (``--baseline-model``) runs."""
PROTOCOLS = ("paper", "library")
SMOOTHING = ("reference", "none")
PROTOCOL_ALIGNMENTS = ("scale", "scale&shift", "scale&shiftl2", "metric")
ALIGNMENTS = (*PROTOCOL_ALIGNMENTS, "scale&shift-exact")

LOWER_IS_BETTER = frozenset(
    {"abs_rel", "sq_rel", "rmse", "log_rmse", "ate", "rpe_trans", "rpe_rot", "lpips", "nonpositive_pred"}
    | {"rot_err", "rot_err_deg", "trans_err", "cammc"}  # camera control
)
"""The metric keys where lower is better (every other key: higher is better). The one home of a
metric's direction: reports, run summaries and the metric classes read it."""


SCORE_VARIANTS = ("_without_camera", "_without_memory", "_mirrored", "_blurred", "_render")
"""Suffixes of the same metric scored another way (same direction as the metric itself)."""


def direction_arrow(key: str) -> str:
    """ "↓" for a metric where lower is better, "↑" otherwise (``rot_err_mirrored`` as ``rot_err``)."""
    for suffix in SCORE_VARIANTS:
        key = key.removesuffix(suffix)
    return "↓" if key in LOWER_IS_BETTER else "↑"
