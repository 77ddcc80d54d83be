"""ClipGeometry: a clip's frames, size and dmax resolved once and shared by the stack's codecs."""

import pytest
import torch

from aether.modalities import ClipGeometry, ModalityStack, TinyBackend


def _clip():
    depth = torch.full((2, 5, 8, 12), 4.0)
    depth[0, 2, 3, 4] = 0.5  # clip 0's nearest point: dmax 2
    depth[1, 1, 0, 0] = 0.0  # invalid, ignored
    return {"video": torch.zeros(2, 5, 3, 8, 12), "depth": depth, "valid": depth > 0}


def test_geometry_is_resolved_from_the_clip():
    geometry = ClipGeometry.of(_clip())
    assert (geometry.num_frames, geometry.height, geometry.width) == (5, 8, 12)
    torch.testing.assert_close(geometry.dmax, torch.tensor([2.0, 0.25]))
    given = ClipGeometry.of({**_clip(), "dmax": 3.0})
    torch.testing.assert_close(given.dmax, torch.tensor([3.0, 3.0]))
    assert ClipGeometry.of({"video": torch.zeros(1, 5, 3, 8, 12)}).dmax is None
    assert ClipGeometry(5, 8, 12).side() == {"height": 8, "width": 12}
    with pytest.raises(ValueError, match="like clip\\['video'\\]"):
        ClipGeometry.of({**_clip(), "depth": torch.ones(2, 4, 8, 12), "valid": None})


def test_stack_records_the_geometry_once_and_codecs_use_its_dmax():
    stack = ModalityStack(["color", "disparity", "raymap"], TinyBackend(spatial_factor=4))
    K = torch.tensor([[10.0, 0, 6], [0, 10.0, 4], [0, 0, 1]])
    clip = {**_clip(), "c2w": torch.eye(4).expand(2, 5, 4, 4), "K": K.expand(2, 5, 3, 3)}
    prepared = stack.prepare(clip)
    assert isinstance(prepared["geometry"], ClipGeometry)
    torch.testing.assert_close(prepared["dmax"], torch.tensor([2.0, 0.25]))
    _, _, dmax = stack.codecs["disparity"].normalize(prepared)
    assert dmax is prepared["dmax"]
    # encoding with the recorded dmax equals encoding with it given explicitly
    torch.testing.assert_close(
        stack.encode(prepared), stack.encode({**clip, "dmax": torch.tensor([2.0, 0.25])})
    )
