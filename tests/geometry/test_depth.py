import pytest
import torch

from aether.geometry import depth
from aether.geometry.depth import MIN_DISPARITY, disparity_to_depth, disparity_validity


def _edge_cases(dtype: torch.dtype) -> torch.Tensor:
    floor = torch.tensor(MIN_DISPARITY, dtype=dtype)
    below = torch.nextafter(floor, torch.tensor(0.0, dtype=dtype))
    above = torch.nextafter(floor, torch.tensor(1.0, dtype=dtype))
    special = torch.tensor(
        [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, -0.0, 0.5, 1.0], dtype=dtype
    )
    g = torch.Generator().manual_seed(0)
    spread = torch.rand(990, generator=g, dtype=torch.float64).to(dtype) * 4 * MIN_DISPARITY
    return torch.cat([special, torch.stack([floor, below, above]), spread])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("chunk", [7, 1 << 18])
def test_fast_disparity_to_depth_equals_the_masked_formula(dtype, chunk, monkeypatch):
    monkeypatch.setattr(depth, "_CHUNK", chunk)  # many chunks, or one
    x = _edge_cases(dtype).reshape(-1, 11)  # any shape
    valid_ref = torch.isfinite(x) & (x >= MIN_DISPARITY)
    depth_ref = torch.where(valid_ref, 1.0 / torch.where(valid_ref, x, torch.ones_like(x)), 0.0)
    d, valid = disparity_to_depth(x)
    assert d.dtype == dtype and d.shape == x.shape
    assert torch.equal(valid, valid_ref) and torch.equal(valid, disparity_validity(x))
    assert torch.equal(d, depth_ref)  # bit for bit, invalid pixels exactly +0
    assert not torch.signbit(d).any()
    assert bool(valid.reshape(-1)[8]) and not bool(valid.reshape(-1)[9])  # the floor is valid, below is not


def test_disparity_to_depth_keeps_gradients_and_non_contiguous_input():
    x = torch.tensor([[0.5, 0.0], [2.0, 1e-4]], dtype=torch.float64, requires_grad=True)
    d, valid = disparity_to_depth(x)
    d.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[-4.0, 0.0], [-0.25, 0.0]], dtype=torch.float64))
    t = torch.rand(4, 6, dtype=torch.float32).t()  # transposed view
    d, valid = disparity_to_depth(t)
    torch.testing.assert_close(d, torch.where(t >= MIN_DISPARITY, 1 / t, 0.0))


def test_disparity_to_depth_rejects_integer_input():
    with pytest.raises(ValueError, match="float tensor"):
        disparity_to_depth(torch.ones(3, dtype=torch.int64))


def test_fill_invalid_depth_uses_the_farthest_valid_depth():
    from aether.geometry.depth import fill_invalid_depth

    depth = torch.tensor([[1.0, 0.0, 3.0], [2.0, 7.0, 0.0]])
    valid = torch.tensor([[True, False, True], [True, False, False]])  # 7 is not valid: not the far depth
    expected = torch.tensor([[1.0, 3.0, 3.0], [2.0, 3.0, 3.0]])
    torch.testing.assert_close(fill_invalid_depth(depth, valid), expected, rtol=0, atol=0)
    torch.testing.assert_close(fill_invalid_depth(depth, torch.zeros_like(valid)), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"valid: expected shape \(2, 3\), got \(3,\)"):
        fill_invalid_depth(depth, valid[0])
