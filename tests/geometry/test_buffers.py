import numpy as np
import pytest
import torch

from aether.geometry import buffers, depth_to_points, disparity_to_depth

from ._helpers import intrinsics, smooth_trajectory


def _from_numpy(t: torch.Tensor) -> bool:
    return not t.untyped_storage().resizable()  # numpy's memory: torch cannot resize it


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bool])
def test_large_cpu_buffers_come_from_numpy(dtype):
    shape = (3, buffers.HUGE_PAGE_MIN_BYTES // dtype.itemsize // 3 + 1)
    big = buffers.empty(shape, dtype)
    assert big.shape == shape and big.dtype == dtype and big.is_contiguous() and _from_numpy(big)
    big.fill_(1)
    assert bool(big.all())
    small = buffers.empty((4, 5), dtype)
    assert small.shape == (4, 5) and small.dtype == dtype and not _from_numpy(small)


def test_dtypes_numpy_lacks_and_other_devices_use_torch():
    bf16 = buffers.empty((buffers.HUGE_PAGE_MIN_BYTES,), torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and not _from_numpy(bf16)
    meta = buffers.empty((buffers.HUGE_PAGE_MIN_BYTES,), torch.float32, "meta")
    assert meta.device.type == "meta" and meta.shape == (buffers.HUGE_PAGE_MIN_BYTES,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_in_numpy_buffers_equal_torch_ones(dtype, monkeypatch):
    g = torch.Generator().manual_seed(0)
    disparity = torch.rand(3, 6, 10, generator=g, dtype=dtype)
    disparity[0, 0, :3] = torch.tensor([float("nan"), 0.0, 1e-4])
    K = intrinsics(20.0, 25.0, 4.5, 3.0, dtype).expand(3, 3, 3)
    c2w = smooth_trajectory(3).to(dtype)
    monkeypatch.setattr(buffers, "HUGE_PAGE_MIN_BYTES", 1 << 62)
    depth_t, valid_t = disparity_to_depth(disparity)
    points_t = depth_to_points(depth_t, K, c2w)
    monkeypatch.setattr(buffers, "HUGE_PAGE_MIN_BYTES", 0)
    depth_n, valid_n = disparity_to_depth(disparity)
    points_n = depth_to_points(depth_n, K, c2w)
    assert all(_from_numpy(t) for t in (depth_n, valid_n, points_n))
    assert not any(_from_numpy(t) for t in (depth_t, valid_t, points_t))
    assert torch.equal(depth_n, depth_t) and torch.equal(valid_n, valid_t) and torch.equal(points_n, points_t)
    assert points_n.stride() == points_t.stride()  # the same channel-last view of a channel-first buffer
    np.testing.assert_array_equal(points_n.numpy(), points_t.numpy())
