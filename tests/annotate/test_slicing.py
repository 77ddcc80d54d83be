"""Slicing decisions on clips built to trigger each rule, and the flow backends."""

import numpy as np
import pytest
import torch

from aether.annotate import DISFlow, RAFTFlow, SliceConfig, Slicer


def _clip(render, frames=12):
    clip = render("strafe", frames=frames)
    return clip.rgb.copy(), clip.dynamic.copy()


def _decisions(result):
    return {f["index"]: f["reason"] for f in result.frames if not f["kept"]}


def test_clean_clip_is_one_slice(render):
    rgb, dyn = _clip(render)
    result = Slicer(SliceConfig(min_length=3))(rgb, dyn)
    assert result.slices == [list(range(12))] and result.cuts == []


@pytest.mark.parametrize(
    ("edit", "config", "reason"),
    [
        (lambda f: np.full_like(f, 128), {}, "keypoints"),  # uniform frame: no keypoints
        (lambda f: (f // 32 + 100).astype(np.uint8), {"min_keypoints": 0}, "texture"),  # flattened contrast
        (lambda f: (f * 0.12).astype(np.uint8), {"min_keypoints": 0, "min_texture": 0}, "brightness"),
    ],
)
def test_frame_rules(render, edit, config, reason):
    rgb, dyn = _clip(render)
    rgb[6] = edit(rgb[6])
    result = Slicer(SliceConfig(min_length=3, **config))(rgb, dyn)
    assert _decisions(result) == {6: reason}
    assert result.slices == [list(range(6)), list(range(7, 12))]


def test_dynamic_rule_and_short_slices(render):
    rgb, dyn = _clip(render)
    dyn[2] = True
    result = Slicer(SliceConfig(min_length=3))(rgb, dyn)
    assert _decisions(result) == {0: "short_slice", 1: "short_slice", 2: "dynamic"}
    assert result.slices == [list(range(3, 12))]


def test_large_motion_cuts_on_flow(render):
    rgb, dyn = _clip(render)
    rgb[6:] = np.roll(rgb[6:], 24, axis=2)  # a 24 px jump = 0.15 of the 160 px diagonal
    result = Slicer(SliceConfig(min_length=3))(rgb, dyn)
    assert [(c["index"], c["reason"]) for c in result.cuts] == [(6, "flow")]
    assert result.slices == [list(range(6)), list(range(6, 12))]


def test_inconsistent_flow_cuts_on_consistency(render):
    rgb, dyn = _clip(render)
    rng = np.random.default_rng(0)
    blocks = rgb[6].reshape(6, 16, 8, 16, 3).transpose(0, 2, 1, 3, 4).reshape(48, 16, 16, 3)
    shuffled = blocks[rng.permutation(48)].reshape(6, 8, 16, 16, 3).transpose(0, 2, 1, 3, 4)
    rgb[6] = shuffled.reshape(96, 128, 3)
    result = Slicer(SliceConfig(min_length=1, max_flow=1.0))(rgb, dyn)
    assert (6, "consistency") in [(c["index"], c["reason"]) for c in result.cuts]
    assert all(f["kept"] for f in result.frames)


def test_dis_flow_recovers_a_shift(render):
    frame = render("strafe", frames=12).rgb[0]
    shifted = np.roll(frame, (2, 3), axis=(0, 1))
    flow = DISFlow()(frame, shifted)[10:-10, 10:-10]
    np.testing.assert_allclose(np.median(flow.reshape(-1, 2), axis=0), [3.0, 2.0], atol=0.3)


def test_raft_backend_loads_local_weights(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path / "raft_small.pth"
    reference = raft_small(weights=None).eval()
    torch.save(reference.state_dict(), path)
    flow = RAFTFlow(path, iterations=2)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)
    b = np.roll(a, 1, axis=1)
    out = flow(a, b)
    assert out.shape == (36, 44, 2) and np.isfinite(out).all()
    with torch.no_grad():
        pad = torch.nn.functional.pad
        x = [torch.from_numpy(i).permute(2, 0, 1)[None].float() / 127.5 - 1 for i in (a, b)]
        x = [pad(i, (0, 84, 0, 92), mode="replicate") for i in x]
        expected = reference(*x, num_flow_updates=2)[-1][0, :, :36, :44].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        RAFTFlow(tmp_path / "missing.pth")
