"""``aether bench rollout``: worlds longer than one window, on synthetic worlds with ground truth.

Each held-out synthetic world is followed along an out-and-back path (:mod:`aether.data.paths`) of
1×, 2× and 4× the model's window. Methods, in one table:

- ``memory``: the rollout with the geometric memory as the model's memory condition (models with one);
- ``no_memory``: the same chained windows without a memory;
- ``memory_alone``: no model: the first frame lifted with its true depth, rendered into every requested
  camera (holes filled with the frame's mean colour);
- ``copy_first``: the first frame repeated.

Scores per method and horizon: PSNR / SSIM / LPIPS against the truth (frames after the first, but
for a last frame that is exactly the given view), camera
drift (ATE of the rollout's stitched cameras against the requested path, Sim(3)-aligned), revisit
consistency on the frames where the path returns to an earlier pose in another window (mean absolute
error and PSNR against that earlier generated frame, and PSNR against the truth), and seconds per window.

    aether bench rollout --model outputs/tiny_memory/model --out results/rollout --steps 2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aether.data.paths import out_and_back, revisits
from aether.data.synthetic import render_clip

METHODS = ("memory", "no_memory", "memory_alone", "copy_first")
PATHS = ("orbit", "turn", "strafe", "forward")
ROW_LABELS = {
    "truth": "true frames",
    "memory": "rollout with memory",
    "no_memory": "chained without memory",
    "memory_alone": "memory render alone\n(true depth, no model)",
    "copy_first": "copy the first frame",
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else -10 * math.log10(mse)


def memory_alone(clip: Any) -> np.ndarray:
    """(T, H, W, 3) in [0, 1]: the first frame lifted with its true depth, seen from every camera."""
    from aether.modalities.cache import lift_frames, render_memory

    rgb = torch.from_numpy(clip.rgb[:1]).double().permute(0, 3, 1, 2)[None] / 255
    depth = torch.from_numpy(clip.depth[:1]).double()[None]
    c2w, K = torch.from_numpy(clip.c2w).double()[None], torch.from_numpy(clip.K).double()[None]
    points, colors, keep = lift_frames(rgb, depth, c2w[:, :1], K[:, :1])
    video, mask = render_memory(points, colors, keep, c2w, K, clip.rgb.shape[1], clip.rgb.shape[2])
    fill = rgb[0, 0].mean((1, 2))[None, :, None, None]
    video = torch.where(mask[0][:, None], video[0], fill)
    return video.permute(0, 2, 3, 1).float().numpy()


def score(
    pred: np.ndarray,
    truth: np.ndarray,
    pairs: np.ndarray,
    lpips_model: Any = None,
    c2w: np.ndarray | None = None,
    requested: np.ndarray | None = None,
) -> dict[str, Any]:
    """Scores of one rollout (T, H, W, 3) in [0, 1] against the truth; ``pairs`` (P, 2) revisits.

    PSNR / SSIM / LPIPS are over the frames after the first whose truth is not the first frame itself
    (an out-and-back path through a static scene ends on exactly the given view, which copying the
    first frame would score at an infinite PSNR)."""
    from aether.evaluation.pixel_metrics import video_pixel_metrics
    from aether.evaluation.pose_metrics import camera_pose_metrics

    frames = [i for i in range(1, len(truth)) if not np.array_equal(truth[i], truth[0])]
    p = torch.from_numpy(pred[frames]).permute(0, 3, 1, 2).float()
    t = torch.from_numpy(truth[frames]).permute(0, 3, 1, 2).float()
    pixel = video_pixel_metrics(p, t, lpips_model)
    out: dict[str, Any] = {k: pixel.get(k) for k in ("psnr", "ssim", "lpips")}
    if len(pairs):
        later, earlier = pairs[:, 0], pairs[:, 1]
        out["revisit_l1"] = float(np.abs(pred[later] - pred[earlier]).mean())
        out["revisit_psnr_self"] = _psnr(pred[later], pred[earlier])
        out["revisit_psnr_truth"] = _psnr(pred[later], truth[later])
    else:
        out.update(revisit_l1=None, revisit_psnr_self=None, revisit_psnr_truth=None)
    out["drift_ate"] = None
    if c2w is not None and requested is not None:
        metrics = camera_pose_metrics(c2w.astype(np.float64), requested.astype(np.float64), static_gt="nan")
        out["drift_ate"] = metrics["ate"]
    return out


def run_rollout(
    pipe: Any,
    *,
    num_worlds: int = 4,
    horizons: tuple[int, ...] = (1, 2, 4),
    first_seed: int = 1_000_000,
    num_inference_steps: int | None = None,
    context_frames: int = 1,
    memory_frames: int | None = None,
    lpips_model: Any = None,
    picture_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The rollout benchmark on ``num_worlds`` held-out synthetic worlds (see the module docstring).

    Returns ``{"window", "rows": [{"method", "horizon", "frames", scores...}], "per_world": [...]}``,
    scores averaged over the worlds."""
    from aether.pipeline.rollout import decoded_outputs, rollout_window
    from aether.pipeline.trajectory import Trajectory

    window = rollout_window(pipe)
    height, width = pipe.height, pipe.width
    has_memory = pipe.sampler.has_memory
    has_depth = "disparity" in decoded_outputs(pipe)
    methods = [m for m in METHODS if (m != "memory" or (has_memory and has_depth))]
    per_world: list[dict[str, Any]] = []
    pictures: dict[str, np.ndarray] = {}
    for i in range(num_worlds):
        seed = first_seed + i
        for horizon in horizons:
            # h windows chained on one shared frame: odd, an out-and-back path of (frames + 1) / 2 poses out
            frames = horizon * (window - 1) + 1
            num_out = (frames + 1) // 2
            outward = render_clip(seed, num_frames=num_out, height=height, width=width, trajectory=PATHS).c2w
            clip = render_clip(seed, num_frames=frames, height=height, width=width, c2w=out_and_back(outward))
            truth = clip.rgb.astype(np.float32) / 255
            pairs = revisits(num_out)
            pairs = pairs[pairs[:, 0] - pairs[:, 1] >= window]  # never inside one window
            traj = Trajectory(clip.c2w, clip.K, width=width, height=height, dmax=_first_dmax(clip.depth[0]))
            for method in methods:
                c2w = requested = None
                started = time.perf_counter()
                if method in ("memory", "no_memory"):
                    world = pipe.rollout(
                        clip.rgb[0], traj, memory=method == "memory", context_frames=context_frames,
                        memory_frames=memory_frames,
                        num_inference_steps=num_inference_steps, seed=seed,
                    )  # fmt: skip
                    pred = world.rgb.astype(np.float32) / 255
                    if world.c2w is not None:
                        c2w, requested = world.c2w, world.requested_c2w
                    seconds = (time.perf_counter() - started) / len(world.meta["windows"])
                elif method == "memory_alone":
                    pred, seconds = memory_alone(clip), None
                else:
                    pred, seconds = np.repeat(truth[:1], frames, 0), None
                row = {"world": seed, "method": method, "horizon": horizon, "frames": frames}
                row.update(score(pred, truth, pairs, lpips_model, c2w, requested), seconds_per_window=seconds)
                per_world.append(row)
                if i == 0 and horizon == max(horizons):
                    pictures[method] = pred
                if progress:
                    print(f"world {seed} {horizon}x {method}: psnr {row['psnr']:.2f} ssim {row['ssim']:.3f}")
            if i == 0 and horizon == max(horizons):
                pictures["truth"] = truth
                picture_pairs = revisits(num_out)
    rows = _average(per_world)
    result = {
        "benchmark": "rollout",
        "window": window,
        "methods": methods,
        "rows": rows,
        "per_world": per_world,
    }
    if picture_dir is not None and pictures:
        result["pictures"] = str(save_pictures(pictures, picture_pairs, Path(picture_dir)))
    return result


def _first_dmax(depth: np.ndarray) -> float:
    valid = depth > 0
    return float((1.0 / depth[valid]).max()) if valid.any() else 1.0


def _average(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = [k for k in rows[0] if k not in ("world", "method", "horizon", "frames")] if rows else []
    out = []
    for method, horizon in dict.fromkeys((r["method"], r["horizon"]) for r in rows):
        group = [r for r in rows if r["method"] == method and r["horizon"] == horizon]
        mean: dict[str, Any] = {"method": method, "horizon": horizon, "frames": group[0]["frames"]}
        for key in keys:
            values = [r[key] for r in group if r[key] is not None and math.isfinite(r[key])]
            mean[key] = float(np.mean(values)) if values else None
        out.append(mean)
    return out


def save_pictures(videos: dict[str, np.ndarray], pairs: np.ndarray, out: Path) -> Path:
    """A labelled grid (``rollout_revisit.png``): one row per method (truth first), columns at three
    outward frames and the frames where the path returns to the middle and the first one."""
    from aether.visualize import frame_grid

    num_out = len(pairs) + 1
    picks = [0, num_out // 2, num_out - 1]
    revisited = (num_out // 2, 0)
    returns = [int(pairs[pairs[:, 1] == p, 0][0]) for p in revisited]
    titles = [f"frame {t}" for t in picks] + [f"frame {t}\n(back at {p})" for t, p in zip(returns, revisited)]
    rows = [(ROW_LABELS[name], videos[name]) for name in ("truth", *METHODS) if name in videos]
    title = "A path that leaves and returns: the outward frames and where the camera comes back"
    return frame_grid(out / "rollout_revisit.png", rows, picks + returns, titles, title)


def markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table."""
    keys = ("psnr", "ssim", "lpips", "drift_ate", "revisit_l1", "revisit_psnr_self", "revisit_psnr_truth",
            "seconds_per_window")  # fmt: skip
    lines = [
        f"Rollout (window {result['window']} frames)",
        "",
        "| method | horizon | frames | " + " | ".join(keys) + " |",
        "|" + "---|" * (3 + len(keys)),
    ]
    for row in result["rows"]:
        cells = ["–" if row.get(k) is None else f"{row[k]:.4g}" for k in keys]
        lines.append(f"| {row['method']} | {row['horizon']}x | {row['frames']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str], prog: str = "aether bench rollout") -> int:
    """``aether bench rollout --model DIR --out DIR``."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Aether model folder or hub id (any exported model)")
    parser.add_argument("--base", default=None, help="CogVideoX base for models on the CogVideoX backend")
    parser.add_argument("--out", required=True, help="output folder (rollout.json, rollout.md, pictures/)")
    parser.add_argument("--worlds", type=int, default=4, help="held-out synthetic worlds")
    parser.add_argument("--horizons", default="1,2,4", help="path lengths in windows, comma-separated")
    parser.add_argument("--first-seed", type=int, default=1_000_000, help="seed of the first world")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (task default if omitted)")
    parser.add_argument(
        "--context-frames", type=int, default=1, help="latent frames each window continues from"
    )
    parser.add_argument(
        "--memory-frames", type=int, default=None,
        help="render the memory of the N frames nearest each window (default: every frame)",
    )  # fmt: skip
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from aether.evaluation.pixel_metrics import load_lpips
    from aether.pipeline import AetherPipeline

    pipe = AetherPipeline.from_pretrained(args.model, base=args.base)
    pipe.progress = False
    out = Path(args.out)
    result = run_rollout(
        pipe, num_worlds=args.worlds, horizons=tuple(int(h) for h in args.horizons.split(",")),
        first_seed=args.first_seed, num_inference_steps=args.steps, context_frames=args.context_frames,
        memory_frames=args.memory_frames, lpips_model=None if args.no_lpips else load_lpips(),
        picture_dir=out / "pictures",
        progress=not args.quiet,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "rollout.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "rollout.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'rollout.json'} and {out / 'rollout.md'}")
    return 0
