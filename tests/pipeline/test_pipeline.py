"""End to end on the tiny saved model: determinism, shapes, long and wide videos, bad inputs."""

import os

import numpy as np
import pytest
import torch

from aether.pipeline import Trajectory, World4D


def _forward_trajectory(num_frames: int) -> Trajectory:
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    c2w[:, 2, 3] = np.linspace(0, 0.5, num_frames)
    return Trajectory.from_poses(c2w, [[40, 0, 24], [0, 40, 16], [0, 0, 1]], width=48, height=32)


def test_same_seed_same_outputs_and_different_seed_differs(pipe, random_video):
    image = random_video(1)[0]
    a = pipe.predict(image, num_frames=17, num_inference_steps=2, seed=3)
    b = pipe.predict(image, num_frames=17, num_inference_steps=2, seed=3)
    c = pipe.predict(image, num_frames=17, num_inference_steps=2, seed=4)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth) and np.array_equal(a.c2w, b.c2w)
    assert not np.array_equal(a.rgb, c.rgb)


@pytest.mark.parametrize("num_frames", [17, 25, 33, 41])
def test_output_shapes_follow_the_contract(pipe, random_video, num_frames):
    world = pipe.plan(*random_video(2), _forward_trajectory(num_frames), num_inference_steps=1)
    assert isinstance(world, World4D)
    assert world.rgb.shape == (num_frames, 32, 48, 3) and world.rgb.dtype == np.uint8
    assert world.depth.shape == world.disparity.shape == world.valid.shape == (num_frames, 32, 48)
    assert world.c2w.shape == (num_frames, 4, 4) and world.K.shape == (num_frames, 3, 3)
    assert world.raymap.shape == (num_frames, 6, 4, 6)
    np.testing.assert_allclose(world.c2w[0], np.eye(4), atol=1e-5)
    assert np.all(world.depth[world.valid] > 0) and np.all(world.depth[~world.valid] == 0)


def test_reconstruction_shapes_and_upstream_mode(pipe, upstream_pipe, random_video):
    video = random_video(17)
    world = pipe.reconstruct(video)
    assert world.meta["windows"] == [0] and world.rgb.shape == (17, 32, 48, 3)
    np.testing.assert_array_equal(world.rgb, video)  # the input colors, not a lossy re-decode
    up = upstream_pipe.reconstruct(video, seed=1)
    assert up.rgb.shape == (17, 32, 48, 3) and np.isfinite(up.disparity).all()


def test_hundred_frame_video_runs_in_sliding_windows(pipe, random_video):
    world = pipe.reconstruct(random_video(100, seed=9), num_inference_steps=1)
    assert world.meta["windows"] == [0, 24, 48, 59] and world.meta["window"] == 41
    assert world.rgb.shape == (100, 32, 48, 3)
    assert np.isfinite(world.c2w).all() and np.isfinite(world.K).all()


def test_other_aspect_ratio_uses_spatial_windows_not_a_crop(pipe, random_video):
    world = pipe.reconstruct(random_video(17, height=32, width=80, seed=2), num_inference_steps=1)
    assert world.rgb.shape == (17, 32, 80, 3)
    assert len(world.meta["spatial_windows"]) >= 2
    assert world.K[0, 0, 2] > 24  # principal point moved to the wide canvas


def test_post_reconstruction_and_no_dynamic_cfg(pipe, random_video):
    image = random_video(1)[0]
    world = pipe.predict(
        image, num_frames=17, num_inference_steps=1, post_reconstruct=True, dynamic_cfg=False
    )
    assert world.meta["post_reconstruct"] and world.rgb.shape == (17, 32, 48, 3)


def test_bad_inputs_raise_value_errors(pipe, random_video):
    with pytest.raises(ValueError, match="at least 17 frames"):
        pipe.reconstruct(random_video(9))
    with pytest.raises(ValueError, match="16 poses, expected 17"):
        pipe.predict(random_video(1)[0], _forward_trajectory(16), num_frames=17)
    with pytest.raises(ValueError, match="num_frames must be one of"):
        pipe.predict(random_video(1)[0], num_frames=20)
    with pytest.raises(ValueError, match="expected \\(H, W, 3\\)"):
        pipe.predict(np.zeros((32, 48)))


def test_offloading_slicing_and_tiling_keep_outputs(tiny_dirs, random_video):
    from aether.pipeline import AetherPipeline

    base, aether = tiny_dirs
    pipe = AetherPipeline.from_pretrained(aether, base=base)
    pipe.progress = False
    image = random_video(1, seed=6)[0]
    ref = pipe.predict(image, num_frames=17, num_inference_steps=2, seed=1)
    pipe.enable_vae_slicing()
    pipe.enable_model_cpu_offload("cpu")
    out = pipe.predict(image, num_frames=17, num_inference_steps=2, seed=1)
    np.testing.assert_array_equal(out.rgb, ref.rgb)
    np.testing.assert_allclose(out.disparity, ref.disparity, atol=1e-6)


def test_denoising_loop_has_no_host_synchronisation(pipe, monkeypatch):
    """Between the first transformer call and the last scheduler step, outside the transformer, no tensor is
    read back to the host (item, tolist, bool, float, int, numpy)."""
    import torch

    state = {"inside": 0, "started": False, "stopped": False, "steps": 0, "syncs": []}
    forward, step = pipe.transformer.forward, pipe.scheduler.step

    def spy_forward(*args, **kwargs):
        state["started"] = True
        state["inside"] += 1
        try:
            return forward(*args, **kwargs)
        finally:
            state["inside"] -= 1

    def spy_step(*args, **kwargs):
        out = step(*args, **kwargs)
        state["steps"] += 1
        state["stopped"] = state["steps"] == 3
        return out

    def recorder(name):
        original = getattr(torch.Tensor, name)

        def method(self, *args, **kwargs):
            if state["started"] and not state["stopped"] and not state["inside"]:
                state["syncs"].append(name)
            return original(self, *args, **kwargs)

        return method

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, recorder(name))
    monkeypatch.setattr(pipe.transformer, "forward", spy_forward)
    monkeypatch.setattr(pipe.scheduler, "step", spy_step)
    pipe.generate("prediction", observation=torch.zeros(3, 32, 48), num_frames=17, num_inference_steps=3)
    assert state["steps"] == 3 and state["syncs"] == []


def test_inference_with_cached_prompt_never_builds_the_text_encoder(
    tiny_dirs, random_video, monkeypatch, tmp_path
):
    import shutil

    import transformers

    from aether.hub import cache_dir
    from aether.models import EMPTY_PROMPT_FILE
    from aether.pipeline import AetherPipeline

    base, shared = tiny_dirs
    aether = tmp_path / "aether"  # a copy: other tests load the shared folder with the upstream method
    shutil.copytree(shared, aether)
    before = sorted(p.relative_to(aether) for p in aether.rglob("*"))
    AetherPipeline.from_pretrained(aether, base=base)  # caches this folder's default-method embedding
    assert (
        sorted(p.relative_to(aether) for p in aether.rglob("*")) == before
    )  # the model folder is left alone
    cached = list(cache_dir("embeddings").glob(f"aether-*/float32/{EMPTY_PROMPT_FILE}"))
    assert cached and str(cache_dir()).startswith(os.environ["AETHER_CACHE_DIR"])

    class Refuse:
        def __init__(self, *args, **kwargs):
            raise AssertionError("text encoder or tokenizer constructed")

        from_pretrained = classmethod(lambda cls, *a, **k: cls())

    monkeypatch.setattr(transformers, "T5EncoderModel", Refuse)
    monkeypatch.setattr(transformers, "AutoTokenizer", Refuse)
    fresh = AetherPipeline.from_pretrained(aether, base=base)
    fresh.progress = False
    world = fresh.predict(random_video(1)[0], num_frames=17, num_inference_steps=1)
    assert world.num_frames == 17


def _generate(pipe, video, seed, **kwargs):
    import torch

    seen = {}
    out = pipe.generate(
        "reconstruction", video=video, num_frames=17, num_inference_steps=2,
        generator=torch.Generator().manual_seed(seed), hook=lambda name, x: seen.__setitem__(name, x.clone()),
        **kwargs,
    )  # fmt: skip
    return out, seen


def test_ensemble_averages_independent_samples(pipe, random_video):
    import torch

    from aether.pipeline.pipeline import to_frames

    video = to_frames(random_video(17))
    single, seen1 = _generate(pipe, video, 0)
    out, seen = _generate(pipe, video, 0, num_samples=3)
    init, final = seen["initial_latents"], seen["final_latents"]
    assert init.shape[0] == final.shape[0] == 3 and seen["condition"].shape[0] == 3
    torch.testing.assert_close(init[:1], seen1["initial_latents"])  # the same generator stream
    assert not torch.equal(init[0], init[1]) and not torch.equal(final[0], final[1])
    torch.testing.assert_close(out.latents, final.mean(0, keepdim=True))
    assert out.latents.shape == single.latents.shape and out.disparity.shape == (17, 32, 48)
    # the average of 8 samples varies over seeds about 8 times less than one sample does
    one = torch.stack([_generate(pipe, video, s)[0].latents for s in range(8)])
    eight = torch.stack([_generate(pipe, video, s, num_samples=8)[0].latents for s in range(8)])
    assert float(eight.var(0).mean()) < 0.3 * float(one.var(0).mean())
    world = pipe.reconstruct(random_video(17), ensemble_size=2)
    assert world.depth.shape == (17, 32, 48)
    with pytest.raises(ValueError, match="num_samples"):
        pipe.reconstruct(random_video(17), ensemble_size=0)


def test_output_size_input_returns_the_input_resolution_with_scaled_intrinsics(pipe, random_video):
    from aether.geometry import resize_intrinsics

    video = random_video(17, height=64, width=96, seed=5)
    model = pipe.reconstruct(video, num_inference_steps=1)
    full = pipe.reconstruct(video, num_inference_steps=1, output_size="input")
    assert model.rgb.shape == (17, 32, 48, 3) and full.rgb.shape == (17, 64, 96, 3)
    assert full.depth.shape == full.valid.shape == (17, 64, 96)
    expected = resize_intrinsics(torch.from_numpy(model.K).double(), (32, 48), (64, 96)).numpy()
    np.testing.assert_allclose(full.K, expected, rtol=1e-6)
    np.testing.assert_array_equal(full.c2w, model.c2w)
    image = random_video(1, height=50, width=60)[0]  # covered to 40x48, cropped to 32x48
    world = pipe.predict(image, num_frames=17, num_inference_steps=1, output_size="input")
    assert world.rgb.shape == (17, 40, 60, 3)
    with pytest.raises(ValueError, match="output_size"):
        pipe.reconstruct(video, num_inference_steps=1, output_size="large")


def test_predicted_worlds_draw_the_requested_path_under_the_generated_one(
    pipe, random_video, tmp_path, monkeypatch
):
    import aether.pipeline.world as world_module

    trajectory = _forward_trajectory(17)
    trajectory.c2w[:, 0, 3] += 2.0  # not starting at the origin: the request is drawn relative
    world = pipe.predict(random_video(1)[0], trajectory, num_inference_steps=1)
    expected = np.tile(np.eye(4), (17, 1, 1))
    expected[:, 2, 3] = np.linspace(0, 0.5, 17)
    np.testing.assert_allclose(world.requested_c2w, expected, atol=1e-6)
    drawn = {}
    real = world_module.plot_trajectories
    monkeypatch.setattr(
        world_module,
        "plot_trajectories",
        lambda path, paths, **kw: drawn.update(paths) or real(path, paths, **kw),
    )
    world.save(tmp_path, formats=("npz", "png"))
    assert list(drawn) == ["requested", "generated"]
    np.testing.assert_array_equal(drawn["requested"], world.requested_c2w)
    np.testing.assert_array_equal(World4D.load(tmp_path).requested_c2w, world.requested_c2w)
    assert pipe.predict(random_video(1)[0], num_frames=17, num_inference_steps=1).requested_c2w is None
