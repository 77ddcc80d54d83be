import math

import numpy as np
import pytest
import torch

from aether.evaluation.amt import (
    AMTS,
    AMTInterpolator,
    BidirectionalCorrelation,
    InputPadder,
    all_pairs_correlation,
    amt_scale,
    backward_warp,
    coords_grid,
    load_amt_s,
)
from aether.evaluation.vbench import motion_smoothness

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AMTS().eval()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("amt_model") / "amt-s.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def _frames(h=64, w=96, shift=3.0):
    """Two smooth colour frames, the second moved ``shift`` pixels to the right."""
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )

    def frame(s):
        return torch.stack(
            [0.5 + 0.4 * torch.sin((x - s) / 6 + c) * torch.cos(y / 8 - c) for c in (0, 1, 2)]
        )[None]

    return frame(0.0), frame(shift)


# ---------------------------------------------------------------- checkpoint layout and loading

# (name, shape) of a few parameters of the released amt-s.pth, from the reference architecture
EXPECTED = {
    "feat_encoder.conv1.weight": (32, 3, 7, 7),
    "feat_encoder.layer1.0.conv1.weight": (8, 32, 1, 1),
    "feat_encoder.layer2.0.downsample.0.weight": (64, 32, 1, 1),
    "feat_encoder.layer3.1.conv3.weight": (96, 24, 1, 1),
    "feat_encoder.conv2.weight": (84, 96, 1, 1),
    "encoder.pyramid1.0.0.weight": (20, 3, 3, 3),
    "encoder.pyramid1.0.1.weight": (20,),
    "encoder.pyramid4.1.0.weight": (56, 56, 3, 3),
    "decoder4.convblock.0.0.weight": (112, 113, 3, 3),
    "decoder4.convblock.1.conv2.0.weight": (20, 20, 3, 3),
    "decoder4.convblock.1.prelu.weight": (112,),
    "decoder4.convblock.2.weight": (112, 48, 4, 4),
    "decoder3.convblock.0.0.weight": (132, 136, 3, 3),
    "decoder2.convblock.2.weight": (96, 24, 4, 4),
    "decoder1.convblock.0.0.weight": (60, 64, 3, 3),
    "decoder1.convblock.2.weight": (60, 24, 4, 4),
    "decoder1.convblock.2.bias": (24,),
    "update4.convc1.weight": (64, 392, 1, 1),
    "update4.convf1.weight": (40, 4, 7, 7),
    "update4.conv.weight": (68, 84, 3, 3),
    "update4.gru.0.weight": (76, 116, 3, 3),
    "update4.gru.2.weight": (76, 76, 3, 3),
    "update3.feat_head.2.weight": (32, 76, 3, 3),
    "update2.gru.0.weight": (76, 92, 3, 3),
    "update2.flow_head.2.weight": (4, 76, 3, 3),
    "comb_block.0.weight": (18, 9, 3, 3),
    "comb_block.1.weight": (18,),
    "comb_block.2.weight": (3, 18, 3, 3),
}


def test_parameter_names_and_shapes_match_the_release(model):
    state = model.state_dict()
    for name, shape in EXPECTED.items():
        assert name in state, name
        assert tuple(state[name].shape) == shape, name
    assert {k.split(".")[0] for k in state} == {
        "feat_encoder", "encoder", "decoder4", "decoder3", "decoder2", "decoder1",
        "update4", "update3", "update2", "comb_block",
    }  # fmt: skip
    assert not list(model.buffers())  # instance norms carry no statistics
    assert len(state) == 213
    assert sum(v.numel() for v in state.values()) == 2_990_543  # "2.99M" in the AMT paper


def test_checkpoint_round_trip_is_strict_and_exact(model, checkpoint):
    interp = load_amt_s(checkpoint)
    assert isinstance(interp, AMTInterpolator) and not interp.training
    loaded = interp.model.state_dict()
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    a, b = _frames()
    expected = AMTInterpolator(model)(a, b)
    assert torch.equal(interp(a, b), expected)


def test_mismatching_checkpoints_raise_naming_the_file(model, tmp_path):
    state = model.state_dict()
    renamed = {("comb_block.9.weight" if k == "comb_block.2.weight" else k): v for k, v in state.items()}
    missing = {k: v for k, v in state.items() if k != "update2.flow_head.2.bias"}
    reshaped = dict(state, **{"comb_block.1.weight": torch.zeros(17)})
    for name, content, words in (
        ("renamed.pth", {"state_dict": renamed}, "comb_block.9.weight"),
        ("missing.pth", {"state_dict": missing}, "update2.flow_head.2.bias"),
        ("reshaped.pth", {"state_dict": reshaped}, "comb_block.1.weight"),
        ("bare.pth", state, "state_dict"),
    ):
        path = tmp_path / name
        torch.save(content, path)
        with pytest.raises(ValueError, match=name) as err:
            load_amt_s(path)
        assert words in str(err.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_amt_s(garbage)


def test_missing_file_gives_none(tmp_path):
    assert load_amt_s(tmp_path / "amt_model" / "amt-s.pth") is None


# ---------------------------------------------------------------- components


def test_all_pairs_correlation_is_the_scaled_dot_product():
    g = torch.Generator().manual_seed(1)
    f0, f1 = torch.randn(2, 5, 3, 4, generator=g), torch.randn(2, 5, 3, 4, generator=g)
    corr = all_pairs_correlation(f0, f1)
    assert corr.shape == (2, 3, 4, 3, 4)
    brute = torch.zeros(2, 3, 4, 3, 4)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                for k in range(3):
                    for m in range(4):
                        brute[b, i, j, k, m] = (f0[b, :, i, j] * f1[b, :, k, m]).sum() / math.sqrt(5)
    torch.testing.assert_close(corr, brute)
    torch.testing.assert_close(corr, torch.einsum("bcij,bckm->bijkm", f0, f1) / math.sqrt(5))


def test_correlation_lookup_reads_the_volume_in_window_order():
    g = torch.Generator().manual_seed(2)
    h, w, r = 8, 8, 1
    f0, f1 = torch.randn(1, 6, h, w, generator=g), torch.randn(1, 6, h, w, generator=g)
    corr = all_pairs_correlation(f0, f1)[0]
    lookup = BidirectionalCorrelation(f0, f1, num_levels=2, radius=r)
    shift = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1)  # x + 2, y - 1
    coords = coords_grid(1, h, w) + shift
    fwd, bwd = lookup(coords, coords_grid(1, h, w))
    assert fwd.shape == bwd.shape == (1, 2 * (2 * r + 1) ** 2, h, w)
    i, j = 4, 3  # query pixel (row, column)
    for ch, (dx, dy) in enumerate((dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)):  # x offset slowest
        assert fwd[0, ch, i, j] == pytest.approx(float(corr[i, j, i - 1 + dy, j + 2 + dx]), abs=1e-5)
        assert bwd[0, ch, i, j] == pytest.approx(float(corr[i + dy, j + dx, i, j]), abs=1e-5)
    # level 1: the volume average-pooled by 2 over the target axes, sampled at half coordinates
    pooled = torch.nn.functional.avg_pool2d(corr.reshape(h * w, 1, h, w), 2).view(h, w, h // 2, w // 2)
    centre = 9 + 4  # level-1 channel of offset (0, 0)
    at = torch.tensor([4.0, 2.0]).view(1, 2, 1, 1).expand(1, 2, h, w)  # level-1 position x 2, y 1
    fwd, _ = lookup(at, at)
    assert fwd[0, centre, i, j] == pytest.approx(float(pooled[i, j, 1, 2]), abs=1e-5)
    # outside the volume the correlation is zero
    far = coords_grid(1, h, w) + 100.0
    assert lookup(far, far)[0].abs().max() == 0


def test_backward_warp_zero_flow_is_identity_and_integer_flow_shifts():
    g = torch.Generator().manual_seed(3)
    img = torch.rand(2, 4, 6, 7, generator=g)
    assert torch.allclose(backward_warp(img, torch.zeros(2, 2, 6, 7)), img, atol=1e-6)
    flow = torch.zeros(2, 2, 6, 7)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # sample 2 columns right, 1 row up
    out = backward_warp(img, flow)
    torch.testing.assert_close(out[..., 1:, :5], img[..., :-1, 2:], atol=1e-6, rtol=0)
    # beyond the border the edge value repeats
    torch.testing.assert_close(out[..., 0, :5], img[..., 0, 2:], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., 1:, 5:], img[..., :-1, 6:].expand(-1, -1, -1, 2), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("h", "w", "divisor", "expected"),
    [(64, 96, 16, (0, 0, 0, 0)), (65, 90, 16, (3, 3, 7, 8)), (250, 370, 32, (7, 7, 3, 3))],
)
def test_padder_pads_to_the_divisor_and_unpads_exactly(h, w, divisor, expected):
    x = torch.rand(1, 3, h, w)
    padder = InputPadder(x.shape, divisor)
    assert padder.pad_widths == expected  # left, right, top, bottom
    padded = padder.pad(x)
    assert padded.shape[-2] % divisor == 0 and padded.shape[-1] % divisor == 0
    assert padded.shape[-2] - h < divisor and padded.shape[-1] - w < divisor
    left, _, top, _ = expected
    assert torch.equal(padded[..., top, left : -expected[1] or None], x[..., 0, :])  # replicated edge row
    assert torch.equal(padded[..., 0, :], padded[..., top, :])
    assert torch.equal(padder.unpad(padded), x)
    with pytest.raises(ValueError, match="pad"):
        padder.pad(torch.rand(1, 3, h + 1, w))


def test_scale_rule():
    gib = 1024**3
    assert amt_scale(480, 720) == 1.0
    assert amt_scale(480, 720, 80 * gib) == 1.0
    # 1080p on 4 GiB: s = 2^19/(1080·1920)·√(1596/1500) = 0.2608, 16/√s = 31.33 -> 16/31
    scale = amt_scale(1080, 1920, 4 * gib)
    assert scale == pytest.approx(16 / 31)
    assert int(16 / scale) == 31
    assert amt_scale(1080, 1920, 2 * gib) == 1 / 16


# ---------------------------------------------------------------- end to end


def test_interpolation_end_to_end(model):
    a, b = _frames(64, 96)
    interp = AMTInterpolator(model)
    mid = interp(a, b)
    assert mid.shape == (1, 3, 64, 96)
    assert torch.isfinite(mid).all() and mid.min() >= 0 and mid.max() <= 1
    odd = interp(*_frames(50, 70))  # padded to 64 x 80 inside, cropped back
    assert odd.shape == (1, 3, 50, 70)
    batched = interp(torch.cat([a, b]), torch.cat([b, a]))
    torch.testing.assert_close(batched[:1], mid, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="frames"):
        interp(a, b[..., :-1])


def test_scaled_flow_estimation_keeps_the_frame_size(model):
    a, b = _frames(128, 160)
    mid = model(a, b, 0.5, scale_factor=0.5)
    assert mid.shape == (1, 3, 128, 160) and torch.isfinite(mid).all()


def test_motion_smoothness_score_through_vbench(checkpoint):
    interp = load_amt_s(checkpoint)
    a, b = _frames(64, 96, shift=6.0)
    frames = []
    for t in np.linspace(0, 1, 5):  # a blend sequence of 5 frames, uint8-valued
        frames.append(((1 - t) * a[0] + t * b[0]) * 255)
    frames = torch.stack(frames).round()
    score = motion_smoothness(interp, frames, torch.device("cpu"))
    assert 0.0 <= score <= 1.0
