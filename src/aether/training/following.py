"""Does the model follow the camera it is given? Held-out views predicted under a trajectory and under
its mirror image, beside the true frames of both, with the camera paths recovered from the predictions.

For each held-out seed the synthetic world is rendered twice from the same first frame: along the
seed's own camera motion and along its left-right mirror image (:func:`~aether.geometry.mirror_poses`),
so both futures have a ground truth. The model predicts from the shared first frame given each
trajectory; a model that follows the camera matches each truth with its own trajectory and not with
the other one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from aether.data.batch import ClipBatch
from aether.data.synthetic import clips_batch, render_clip
from aether.evaluation.camera_control import aligned_paths
from aether.evaluation.pixel_metrics import video_pixel_metrics
from aether.geometry import mirror_poses
from aether.modalities.clip import ClipGeometry
from aether.training.validation import Action, camera_control_of, generate, sampler_for
from aether.visualize import frame_grid, plot_trajectories

FRAMES_SHOWN = 5
MIN_WIDTH_PX = 960  # the picture's width: every frame readable at the demo's 64 × 96


def opposite_clips(
    seed: int, *, num_frames: int, height: int, width: int, fps: float, trajectory: str
) -> ClipBatch:
    """A batch of two clips sharing their first frame: the seed's ``trajectory`` and its mirror image.

    Returns the layout of the training batches (:class:`~aether.data.batch.ClipBatch`): video
    (2,T,3,H,W) in [-1,1], depth, valid, K (2,T,3,3), c2w (2,T,4,4) relative to frame 0, fps, dmax (2,).
    """
    own = render_clip(seed, num_frames=num_frames, height=height, width=width, trajectory=trajectory, fps=fps)
    mirrored = mirror_poses(torch.from_numpy(own.c2w)).numpy()
    other = render_clip(
        seed, num_frames=num_frames, height=height, width=width, trajectory=trajectory, fps=fps, c2w=mirrored
    )
    return clips_batch((own, other), keys=[f"seed{seed}-{trajectory}", f"seed{seed}-{trajectory}-mirrored"])


def follow_pair(module: Any, batch: ClipBatch, *, steps: int, seed: int = 0) -> dict[str, Any]:
    """Predict both clips of :func:`opposite_clips` from their shared first frame, each given its own
    trajectory, and score every prediction against both truths.

    Returns ``rgb`` (2,T,H,W,3) predictions in [0,1], ``truth`` (2,T,H,W,3), ``psnr`` (2,2) with
    ``psnr[i, j]`` = prediction given trajectory i against truth j (frames 1..T-1), ``camera_errors``
    (CamI2V's, per prediction), and ``requested`` / ``recovered``: per prediction the requested path and
    the cameras the annotation pipeline recovers from it (None when it fails), as the errors compare
    them (relative to the first camera, unit largest distance).
    """
    batch = cast(ClipBatch, module.target_stack.prepare(batch))  # the same keys, geometry resolved
    num_frames, _, height, width = batch["video"].shape[1:]
    dmax = ClipGeometry.of(batch).dmax
    truth = ((batch["video"].float() + 1) / 2).clamp(0, 1)
    rgb, recovered, errors = [], [], []
    with sampler_for(module) as sampler:
        for i in range(2):
            action = Action.of(
                batch["c2w"][i], batch["K"][i], float(dmax[i]), height, width,
                int(sampler.backend.spatial_factor),
            )  # fmt: skip
            out, _ = generate(
                sampler,
                "prediction",
                {"observation": batch["video"][0, 0]},
                action,
                memory=sampler.has_memory,  # the first frame lifted with the model's own depth
                num_frames=num_frames,
                fps=float(batch["fps"][i]),
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(seed),
            )
            rgb.append(out.rgb.float())
            scores, cameras = camera_control_of(out, batch["K"][i], batch["c2w"][i], sampler.min_disparity)
            errors.append(scores)
            recovered.append(None if cameras is None else aligned_paths(batch["c2w"][i], cameras)[1])
    psnr = np.array(
        [
            [video_pixel_metrics(rgb[i][1:].permute(0, 3, 1, 2), truth[j, 1:])["psnr"] for j in range(2)]
            for i in range(2)
        ]
    )
    return {
        "rgb": torch.stack(rgb).numpy(),
        "truth": truth.permute(0, 1, 3, 4, 2).numpy(),
        "psnr": psnr,
        "camera_errors": errors,
        "recovered": recovered,
        "requested": [aligned_paths(c2w, c2w)[0] for c2w in batch["c2w"].double()],
        "keys": list(batch["key"]),
    }


def following_figure(path: Path, result: dict[str, Any], title: str) -> Path:
    """Rows: the truth along the trajectory, the prediction given it, the prediction given the mirrored
    trajectory, the truth along the mirrored one; columns: frames spread over the clip."""
    truth, rgb, psnr = result["truth"], result["rgb"], result["psnr"]
    num_frames = truth.shape[1]
    idx = sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, FRAMES_SHOWN)})
    rows = [
        ("true frames, trajectory A", truth[0]),
        (f"predicted given A\n({psnr[0, 0]:.1f} dB vs truth A, {psnr[0, 1]:.1f} vs B)", rgb[0]),
        (f"predicted given B = A mirrored\n({psnr[1, 1]:.1f} dB vs truth B, {psnr[1, 0]:.1f} vs A)", rgb[1]),
        ("true frames, trajectory B", truth[1]),
    ]
    return frame_grid(path, rows, idx, [f"frame {t}" for t in idx], title, width_px=MIN_WIDTH_PX)


def following_report(
    module: Any, out: Path, *, seeds: list[int], trajectories: list[str], steps: int, clip: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Markdown lines and JSON-ready numbers of the camera-following section of a run report.

    ``clip``: the held-out clips' ``num_frames``, ``height``, ``width`` and ``fps``; each seed is
    rendered with the trajectory of the same position in ``trajectories`` (cycled).
    """
    lines = [
        "## Does the model follow the camera?",
        "",
        "Held-out views (seeds never rendered for training), each predicted from its first frame under a "
        "camera trajectory A and under its left-right mirror image B, beside the true frames of both. "
        "A model that follows the camera matches truth A given A and truth B given B. The camera paths "
        "below are recovered from the predicted frames by the annotation pipeline (feature tracks, "
        "bundle adjustment; no model weights), drawn after Sim(3) alignment.",
        "",
        "| view | given A: vs truth A / vs truth B (dB) | given B: vs truth B / vs truth A (dB) |",
        "| --- | --- | --- |",
    ]
    numbers: dict[str, Any] = {}
    pictures: list[str] = []
    for n, seed in enumerate(seeds):
        kind = trajectories[n % len(trajectories)]
        result = follow_pair(module, opposite_clips(seed, trajectory=kind, **clip), steps=steps)
        psnr = result["psnr"]
        given_a, given_b = f"{psnr[0, 0]:.2f} / {psnr[0, 1]:.2f}", f"{psnr[1, 1]:.2f} / {psnr[1, 0]:.2f}"
        lines.append(f"| seed {seed}, {kind} | {given_a} | {given_b} |")
        key = f"seed{seed}-{kind}"
        numbers[key] = {"psnr": psnr.tolist(), "camera_errors": result["camera_errors"]}
        title = f"seed {seed}: {kind} (A) and its mirror image (B)"
        frames = following_figure(out / "pictures" / f"follow_{key}.png", result, title)
        paths = {"requested A": result["requested"][0], "requested B": result["requested"][1]}
        for i, name in enumerate("AB"):
            if result["recovered"][i] is not None:
                paths[f"recovered from prediction given {name}"] = result["recovered"][i]
        title = f"seed {seed}: requested vs recovered cameras (unit largest distance)"
        plot = plot_trajectories(out / "pictures" / f"follow_{key}_cameras.png", paths, title=title)
        pictures += [
            f"![{key} frames]({frames.relative_to(out)})",
            "",
            f"![{key} cameras]({plot.relative_to(out)})",
            "",
        ]
    return [*lines, "", *pictures], numbers
