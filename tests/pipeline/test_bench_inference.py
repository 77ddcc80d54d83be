"""The CPU-sized variant of benchmarks/bench_inference_gpu.py: the scenarios run and report their shapes
(timings are never asserted)."""

import json
import sys

from benchmarks import bench_inference_gpu as bench


def test_cpu_small_variant_reports_every_scenario(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # the quantized rows are skipped with a reason
    out = tmp_path / "inference.json"
    options = "none,cache-fastercache,offload-sequential,quantize-int8wo"
    result = bench.main(["--cpu-small", "--options", options, "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["gpu_measured"] is False and "not measured" in result["note"]
    rows = {(r["option"], r["scenario"]): r for r in result["rows"]}
    assert len(rows) == 4 * 3
    for option in options.split(",")[:3]:
        window, video, predict = (
            rows[option, s] for s in ("reconstruct_window", "reconstruct_video", "predict")
        )
        assert (window["output_frames"], window["windows"], window["steps"]) == (17, 1, 2)
        assert (video["output_frames"], video["windows"], video["steps"]) == (33, 3, 6)  # 3 windows x 2 steps
        assert (predict["output_frames"], predict["steps"]) == (17, 3)
        assert window["output_size"] == [32, 48]
    assert "torchao" in rows["quantize-int8wo", "predict"]["skipped"]
    assert result["table"].count("\n") == 2 + 12 - 1


def test_real_configs_build_the_5b_transformer_and_its_vae():
    """The transcribed CogVideoX-5b-I2V configs give the published sizes (built on the meta device)."""
    import torch
    from diffusers import AutoencoderKLCogVideoX

    from aether.models.transformer import AetherTransformer

    with torch.device("meta"):
        transformer = AetherTransformer.from_config(bench.COGVIDEOX_5B_I2V_TRANSFORMER)
        vae = AutoencoderKLCogVideoX(**bench.COGVIDEOX_5B_I2V_VAE)
    assert (transformer.target_channels, transformer.condition_channels) == (56, 40)
    assert round(sum(p.numel() for p in transformer.parameters()) / 1e9, 2) == 5.57
    assert round(sum(p.numel() for p in vae.parameters()) / 1e6) == 216
    assert bench.real_sizes().height // 8 == transformer.config.sample_height
