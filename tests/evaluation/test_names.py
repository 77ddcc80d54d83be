"""The benchmark names and metric directions: one home, read by every report."""

from aether.evaluation.names import LOWER_IS_BETTER, SMOOTHING, direction_arrow


def test_every_error_goes_down_and_every_agreement_goes_up():
    from aether.evaluation.depth_metrics import METRICS
    from aether.evaluation.pixel_metrics import VideoPixelMetric

    errors = {"abs_rel", "sq_rel", "rmse", "log_rmse", "ate", "rpe_trans", "rpe_rot", "lpips"}
    agreements = {"delta_1_25", "delta_1_25_2", "delta_1_25_3", "psnr", "ssim", "ms_ssim", "total"}
    assert errors <= LOWER_IS_BETTER and not agreements & LOWER_IS_BETTER
    assert set(METRICS) | set(VideoPixelMetric.KEYS) <= errors | agreements
    assert [direction_arrow(k) for k in ("rmse", "delta_1_25", "ate", "psnr")] == ["↓", "↑", "↓", "↑"]


def test_the_benchmark_smoothing_names_are_the_geometry_smoothers():
    from aether.geometry.smoothing import POSE_SMOOTHERS

    assert SMOOTHING == POSE_SMOOTHERS
