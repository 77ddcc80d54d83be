"""Training (the DataModule) and inference (the pipeline) frame an image identically."""

import numpy as np
import pytest
import torch

from aether.data.datamodule import resize_and_crop
from aether.pipeline.pipeline import to_frames

from .conftest import HEIGHT, WIDTH


@pytest.mark.parametrize("size", [(32, 50), (32, 51), (34, 48), (35, 48), (40, 61), (27, 45)])
def test_training_and_inference_crop_the_same_pixels(pipe, size):
    """Even and odd margins on either side, with and without a resize."""
    h, w = size
    image = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    inference, _ = pipe._crop_images({"observation": image})
    video = to_frames(image[None])
    K = torch.tensor([[[40.0, 0.0, w / 2], [0.0, 40.0, h / 2], [0.0, 0.0, 1.0]]])
    training, _, _, _ = resize_and_crop(video, torch.ones(1, h, w), K, HEIGHT, WIDTH)
    assert inference["observation"].shape == (3, HEIGHT, WIDTH)
    torch.testing.assert_close(training[0], inference["observation"], rtol=0, atol=0)
