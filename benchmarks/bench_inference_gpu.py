"""Inference benchmark at the real model's shapes: seconds per step, window and clip, and peak memory, for
each speed / memory option of the pipeline. Nothing is downloaded: the transformer and the VAE are built
from the CogVideoX-5b-I2V configs (transcribed below; the transformer widened to Aether's 96 in / 56 out
channels) with random weights, which cost the same time as trained ones.

Scenarios (AetherV1 defaults): reconstruction of one 41 x 480 x 720 window (4 steps, no CFG), of a
121-frame video in windows (41 frames, stride 24), and prediction of 41 frames (50 steps, CFG batch,
dynamic CFG). Options: none (bf16 on the device), ``compile``, ``cache fastercache``, ``cache pab``,
``offload model``, ``offload sequential`` (reconstruction only: 50 CFG steps take too long per layer),
``vae slicing``, ``vae tiling``, ``quantize int8wo`` (when torchao is installed).

``--cpu-small`` runs the same scenarios and options on tiny components on the CPU in seconds (shapes,
not speed: the test suite runs it; its timings mean nothing for a GPU).

    python benchmarks/bench_inference_gpu.py [--options none,compile,...] [--out PATH]
    python benchmarks/bench_inference_gpu.py --cpu-small
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"

# transformer/config.json of THUDM/CogVideoX-5b-I2V, widened to Aether's 96 in / 56 out channels
COGVIDEOX_5B_I2V_TRANSFORMER: dict[str, Any] = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 96,  # 32 in the base (16 noisy + 16 image latents)
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 56,  # 16 in the base
    "patch_size": 2,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_learned_positional_embeddings": True,
    "use_rotary_positional_embeddings": True,
}
# vae/config.json of THUDM/CogVideoX-5b-I2V
COGVIDEOX_5B_I2V_VAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 256, 512],
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 16,
    "latents_mean": None,
    "latents_std": None,
    "layers_per_block": 3,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
    "shift_factor": None,
    "temporal_compression_ratio": 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}
OPTIONS = (
    "none",
    "compile",
    "cache-fastercache",
    "cache-pab",
    "offload-model",
    "offload-sequential",
    "vae-slicing",
    "vae-tiling",
    "quantize-int8wo",
)
GPU_NOT_MEASURED = (
    "GPU numbers were not measured this time: no GPU was available to this run; the CPU-sized variant "
    "below checks shapes only and its timings say nothing about a GPU."
)


@dataclass(frozen=True)
class Sizes:
    """One benchmark scale: model configs and clip sizes."""

    name: str
    transformer: dict[str, Any]
    vae: dict[str, Any]
    height: int
    width: int
    frames: int
    long_video: int
    window: int
    stride: int
    recon_steps: int
    predict_steps: int
    text_length: int
    text_dim: int


def real_sizes() -> Sizes:
    return Sizes(
        "cogvideox-5b-i2v", COGVIDEOX_5B_I2V_TRANSFORMER, COGVIDEOX_5B_I2V_VAE,
        480, 720, 41, 121, 41, 24, 4, 50, 226, 4096,
    )  # fmt: skip


def cpu_small_sizes() -> Sizes:
    from aether.models.testing import TINY_TEXT_DIM, TINY_TEXT_LENGTH, tiny_vae_config
    from aether.models.transformer import tiny_config

    return Sizes(
        "cpu-small", tiny_config(sample_height=4, sample_width=6), tiny_vae_config(32, 48),
        32, 48, 17, 33, 17, 8, 2, 3, TINY_TEXT_LENGTH, TINY_TEXT_DIM,
    )  # fmt: skip


def build_pipeline(sizes: Sizes, device: torch.device, dtype: torch.dtype, seed: int = 0) -> Any:
    """An AetherPipeline of randomly initialised components of ``sizes``, built directly on ``device``."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler

    from aether.modalities import CogVideoXBackend
    from aether.models.testing import COGVIDEOX_5B_I2V_SCHEDULER
    from aether.models.transformer import AetherTransformer
    from aether.pipeline import AetherPipeline

    torch.manual_seed(seed)
    with torch.device(device):
        transformer = AetherTransformer.from_config(sizes.transformer).to(dtype)
        vae = AutoencoderKLCogVideoX(**sizes.vae).to(dtype)
    prompt = torch.randn(1, sizes.text_length, sizes.text_dim, dtype=dtype)
    scheduler = CogVideoXDPMScheduler(**COGVIDEOX_5B_I2V_SCHEDULER)
    pipe = AetherPipeline(transformer, CogVideoXBackend(vae), scheduler, prompt)
    pipe.progress = False
    return pipe


def apply_option(pipe: Any, option: str, device: torch.device, cpu_small: bool) -> None:
    """Switch one option on (the CPU-sized run compiles with the eager backend: graph capture only)."""
    if option == "compile":
        pipe.enable_compile(**({"backend": "eager"} if cpu_small else {}))
    elif option.startswith("cache-"):
        pipe.enable_cache(option.removeprefix("cache-"))
    elif option == "offload-model":
        pipe.enable_model_cpu_offload(device)
    elif option == "offload-sequential":
        pipe.enable_sequential_cpu_offload(device)
    elif option == "vae-slicing":
        pipe.enable_vae_slicing()
    elif option == "vae-tiling":
        pipe.enable_vae_tiling()
    elif option.startswith("quantize-"):
        pipe.enable_quantization(option.removeprefix("quantize-"))
    elif option != "none":
        raise ValueError(f"option: expected one of {OPTIONS}, got {option!r}")


class StepClock:
    """Wall time of the denoising loops (device-synchronised) and the number of transformer steps."""

    def __init__(self, pipe: Any, device: torch.device) -> None:
        self.seconds, self.steps, self.device = 0.0, 0, device
        denoise = pipe.sampler.denoise

        def timed(latents, condition, unconditional, timesteps, *args, **kwargs):
            _sync(self.device)
            start = time.perf_counter()
            out = denoise(latents, condition, unconditional, timesteps, *args, **kwargs)
            _sync(self.device)
            self.seconds += time.perf_counter() - start
            self.steps += len(timesteps)
            return out

        pipe.sampler.denoise = timed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def run_scenario(
    pipe: Any, clock: StepClock, device: torch.device, fn: Callable[[], Any], warmup: bool = True
) -> dict[str, Any]:
    """Run ``fn`` (after a first, untimed run that compiles and warms the allocator when ``warmup``)."""
    if warmup:
        fn()
    clock.seconds, clock.steps = 0.0, 0
    _peak_reset(device)
    _sync(device)
    start = time.perf_counter()
    world = fn()
    _sync(device)
    seconds = time.perf_counter() - start
    windows = len(world.meta.get("windows", [0]))
    return {
        "seconds_per_clip": seconds,
        "windows": windows,
        "seconds_per_window": seconds / windows,
        "denoise_seconds": clock.seconds,
        "steps": clock.steps,
        "seconds_per_step": clock.seconds / max(clock.steps, 1),
        "outside_denoising_seconds": seconds - clock.seconds,
        "peak_memory_gib": _peak_gib(device),
        "output_frames": int(world.rgb.shape[0]),
        "output_size": [int(world.rgb.shape[1]), int(world.rgb.shape[2])],
    }


def bench(
    sizes: Sizes, options: list[str], device: torch.device, dtype: torch.dtype, cpu_small: bool
) -> list:
    import numpy as np

    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (sizes.long_video, sizes.height, sizes.width, 3), dtype=np.uint8)
    image = video[0]
    rows = []
    for option in options:
        scenarios: dict[str, Callable[[Any], Any]] = {
            "reconstruct_window": lambda p: p.reconstruct(
                video[: sizes.frames], num_inference_steps=sizes.recon_steps
            ),
            "reconstruct_video": lambda p: p.reconstruct(
                video, window=sizes.window, stride=sizes.stride, num_inference_steps=sizes.recon_steps
            ),
            "predict": lambda p: p.predict(
                image, num_frames=sizes.frames, num_inference_steps=sizes.predict_steps
            ),
        }
        if option == "offload-sequential" and not cpu_small:
            scenarios.pop("predict")
        for name, scenario in scenarios.items():
            row: dict[str, Any] = {"option": option, "scenario": name}
            try:
                pipe = build_pipeline(
                    sizes, torch.device("cpu") if option.startswith("offload") else device, dtype
                )
                apply_option(pipe, option, device, cpu_small)
                clock = StepClock(pipe, device)
                warmup = option == "compile" or not cpu_small  # tiny runs: only compilation needs one
                run = lambda pipe=pipe, scenario=scenario: scenario(pipe)
                row.update(run_scenario(pipe, clock, device, run, warmup))
            except (ImportError, torch.cuda.OutOfMemoryError) as err:
                row["skipped"] = f"{type(err).__name__}: {err}"
            finally:
                pipe = None
                torch._dynamo.reset()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table of docs/inference.md: one row per option and scenario."""
    lines = [
        "| option | scenario | s / clip | s / window | s / step | peak GiB |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['option']} | {r['scenario']} | skipped: {r['skipped'].split(':')[0]} | | | |")
            continue
        peak = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        lines.append(
            f"| {r['option']} | {r['scenario']} | {r['seconds_per_clip']:.2f} | "
            f"{r['seconds_per_window']:.2f} | {r['seconds_per_step']:.3f} | {peak} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-small", action="store_true", help="tiny components on the CPU (shapes only)")
    parser.add_argument(
        "--options", default=None, help=f"comma-separated subset of {OPTIONS} (default: all; with "
        "--cpu-small all but vae-tiling, whose default tiles exceed the tiny 32 x 48 VAE)",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="default: cuda (the CPU for --cpu-small)")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default: results/inference_gpu*.json)"
    )
    args = parser.parse_args(argv)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # per-build dtype notes and experimental-feature warnings
    default = [o for o in OPTIONS if not (args.cpu_small and o == "vae-tiling")]
    options = default if args.options is None else [o for o in args.options.split(",") if o]
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        parser.error(f"unknown options {unknown}; expected a subset of {OPTIONS}")
    device = torch.device(args.device or ("cpu" if args.cpu_small else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run with --cpu-small (shapes only) or on a GPU")
    sizes = cpu_small_sizes() if args.cpu_small else real_sizes()
    dtype = torch.float32 if args.cpu_small else torch.bfloat16
    rows = bench(sizes, options, device, dtype, args.cpu_small)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    result = {
        "sizes": sizes.name,
        "device": gpu or "cpu",
        "gpu_measured": gpu is not None,
        "note": None if gpu else GPU_NOT_MEASURED,
        "dtype": str(dtype).removeprefix("torch."),
        "clip": {"frames": sizes.frames, "height": sizes.height, "width": sizes.width},
        "long_video_frames": sizes.long_video,
        "window": sizes.window,
        "stride": sizes.stride,
        "steps": {"reconstruction": sizes.recon_steps, "prediction": sizes.predict_steps},
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
        "table": markdown_table(rows),
    }
    out = args.out or RESULTS / ("inference_gpu_cpu_small.json" if args.cpu_small else "inference_gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print(result["table"])
    return result


if __name__ == "__main__":
    main()
