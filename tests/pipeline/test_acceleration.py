"""Speed and memory options of the pipeline on the tiny saved model: what each keeps of the results."""

import sys

import numpy as np
import pytest
import torch

from aether.pipeline import AetherPipeline


def _fresh(tiny_dirs):
    base, aether = tiny_dirs
    pipe = AetherPipeline.from_pretrained(aether, base=base)
    pipe.progress = False
    return pipe


def _assert_worlds_equal(a, b):
    for name in ("rgb", "depth", "disparity", "c2w", "K", "valid"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_compiled_transformer_matches_eager_and_windows_share_one_graph(tiny_dirs, random_video):
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    eager = _fresh(tiny_dirs)
    video = random_video(33, seed=2)  # windows of 17 frames at stride 8: starts 0, 8, 16
    ref = eager.reconstruct(video, window=17, stride=8, num_inference_steps=2)
    assert ref.meta["windows"] == [0, 8, 16]

    pipe = _fresh(tiny_dirs)
    counter = CompileCounterWithBackend("aot_eager")
    pipe.enable_compile(backend=counter)
    pipe.reconstruct(video[:17], window=17, num_inference_steps=2)  # one window: compiles
    graphs = counter.frame_count
    assert graphs >= 1
    out = pipe.reconstruct(video, window=17, stride=8, num_inference_steps=2)  # three windows, two steps each
    assert counter.frame_count == graphs  # no recompilation across windows or steps
    np.testing.assert_allclose(out.disparity, ref.disparity, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.c2w, ref.c2w, rtol=1e-4, atol=1e-5)
    torch._dynamo.reset()


def _attention_calls(pipe):
    """Count the attention computations of every transformer block (cached steps skip them)."""
    calls = {"n": 0}

    def count(*_):
        calls["n"] += 1

    for block in pipe.transformer.transformer_blocks:
        block.attn1.to_q.register_forward_hook(count)  # runs only when the attention is computed
    return calls


@pytest.mark.parametrize("method", ["fastercache", "pab"])
def test_feature_cache_off_is_bit_identical_and_on_stays_close(method, tiny_dirs, random_video):
    image = random_video(1, seed=4)[0]
    kwargs = {"num_frames": 17, "num_inference_steps": 10, "seed": 3}
    pipe = _fresh(tiny_dirs)
    calls = _attention_calls(pipe)
    ref = pipe.predict(image, **kwargs)  # CFG batch, dynamic CFG
    full = calls["n"]
    assert full == 10 * len(pipe.transformer.transformer_blocks)

    pipe.enable_cache(method)
    calls["n"] = 0
    cached = pipe.predict(image, **kwargs)
    assert calls["n"] < full  # some steps reused cached attention
    again = pipe.predict(image, **kwargs)  # state is reset per loop: the same result twice
    _assert_worlds_equal(cached, again)
    # stated tolerance on this fixed seed: mean |Δ| of disparity and rgb below 0.05 (both in [0, 1])
    assert 0 < np.abs(cached.disparity - ref.disparity).mean() < 0.05
    assert np.abs(cached.rgb / 255.0 - ref.rgb / 255.0).mean() < 0.05

    pipe.disable_cache()
    calls["n"] = 0
    _assert_worlds_equal(pipe.predict(image, **kwargs), ref)
    assert calls["n"] == full


def test_fastercache_runs_without_cfg_too(tiny_dirs, random_video):
    pipe = _fresh(tiny_dirs)
    pipe.enable_cache("fastercache")
    world = pipe.reconstruct(random_video(17, seed=5), num_inference_steps=4)
    assert np.isfinite(world.depth).all() and world.c2w.shape == (17, 4, 4)
    with pytest.raises(ValueError, match="fastercache"):
        pipe.enable_cache("teacache")


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offloaded_output_equals_on_device_output(mode, tiny_dirs, random_video):
    image = random_video(1, seed=6)[0]
    kwargs = {"num_frames": 17, "num_inference_steps": 2, "seed": 1}
    ref = _fresh(tiny_dirs).predict(image, **kwargs)
    pipe = _fresh(tiny_dirs)
    getattr(pipe, f"enable_{mode}_cpu_offload")("cpu")  # the accelerate hooks run on CPU too
    if mode == "sequential":
        assert pipe.transformer.proj_out.weight.device.type == "meta"  # weights live in the hooks
    _assert_worlds_equal(pipe.predict(image, **kwargs), ref)
    with pytest.raises(ValueError, match="already enabled"):
        pipe.enable_model_cpu_offload("cpu")


def test_vae_slicing_keeps_the_reconstruction(tiny_dirs, random_video):
    video = random_video(17, seed=7)
    ref = _fresh(tiny_dirs).reconstruct(video, num_inference_steps=2, mode="upstream")
    pipe = _fresh(tiny_dirs)
    pipe.enable_vae_slicing()
    _assert_worlds_equal(pipe.reconstruct(video, num_inference_steps=2, mode="upstream"), ref)


def test_quantization_without_torchao_names_the_package(tiny_dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # import torchao -> ImportError
    pipe = _fresh(tiny_dirs)
    with pytest.raises(ImportError, match="pip install torchao"):
        pipe.enable_quantization("int8wo")
    with pytest.raises(ValueError, match="int8wo"):
        pipe.enable_quantization("int3")


def test_cli_speed_flags(tiny_dirs, random_video, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from aether.cli import main

    base, aether = tiny_dirs
    Image.fromarray(random_video(1, seed=8)[0]).save(tmp_path / "obs.png")
    model = ["--model", str(aether), "--base", str(base), "--quiet", "--formats", "npz", "--steps", "3"]
    argv = ["predict", str(tmp_path / "obs.png"), "--frames", "17", *model]
    plain, fast = tmp_path / "plain", tmp_path / "fast"
    assert main([*argv, "--out", str(plain)]) == 0
    flags = ["--offload", "sequential", "--device", "cpu", "--vae-slicing"]
    assert main([*argv, "--out", str(fast), *flags]) == 0
    a, b = np.load(plain / "world.npz"), np.load(fast / "world.npz")
    np.testing.assert_array_equal(a["depth"], b["depth"])  # offload and slicing keep the results
    assert main([*argv, "--out", str(tmp_path / "c"), "--cache", "pab"]) == 0
    monkeypatch.setitem(sys.modules, "torchao", None)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "q"), "--quantize", "int8wo"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install torchao" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_compile_and_cache_together_match_eager_cached_without_recompiling(tiny_dirs, random_video):
    """The cache hooks keep Python state (step counters, cached tensors): compiled with them, the
    transformer follows the eager cached run (aot_eager runs the same kernels: equal to float rounding),
    and the windows of one video reuse the graphs of the first (a recompilation raises). FasterCache,
    the cache with the most state (PAB passes the same checks: run by hand, 6 graphs)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    method = "fastercache"

    torch._dynamo.reset()
    video = random_video(25, seed=9)  # windows of 17 frames at stride 8: starts 0, 8
    kwargs = {"window": 17, "num_inference_steps": 4}
    eager = _fresh(tiny_dirs)
    eager.enable_cache(method)
    calls = _attention_calls(eager)
    ref = eager.reconstruct(video, stride=8, **kwargs)
    assert ref.meta["windows"] == [0, 8]
    assert calls["n"] < 2 * 4 * len(eager.transformer.transformer_blocks)  # the cache skipped some

    pipe = _fresh(tiny_dirs)
    pipe.enable_cache(method)
    counter = CompileCounterWithBackend("aot_eager")
    pipe.enable_compile(backend=counter)
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):  # never fall back to eager
        pipe.reconstruct(video[:17], **kwargs)  # one window: compiles (graphs break at the hooks)
        graphs = counter.frame_count
        assert graphs >= 1
        with torch._dynamo.config.patch(error_on_recompile=True):
            out = pipe.reconstruct(video, stride=8, **kwargs)  # two windows, four steps each
    assert counter.frame_count == graphs
    np.testing.assert_allclose(out.disparity, ref.disparity, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.rgb, ref.rgb, atol=1)
    np.testing.assert_allclose(out.c2w, ref.c2w, rtol=1e-4, atol=1e-5)
    torch._dynamo.reset()
