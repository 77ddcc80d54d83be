"""Evaluation of a training module on held-out clips, through the inference sampler.

For each clip and task the module's weights are sampled by the same
:class:`~aether.pipeline.sampler.AetherSampler` as at inference time, composed from the module's
own model spec (so any target modalities sample); the outputs are scored against the ground truth
and against simple baselines, as each task's ``scored_on`` says (any registered task runs: its
``required_inputs`` are cut from the clip):

- geometry (reconstruction): depth Abs Rel / δ<1.25 (per-sequence scale alignment) against predicting
  each frame's mean depth (models with a disparity target); camera ATE / RPE against a static
  camera (models with a raymap target);
- frames (prediction, planning; action-conditioned with the true trajectory, no CFG as in the
  paper's planning protocol): PSNR / SSIM of the generated frames that were not given,
  against copying the first frame.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from aether.data.batch import ClipBatch
from aether.evaluation.baselines import blurred_copies, frame_mean_depth, static_camera_metrics
from aether.evaluation.depth_metrics import video_depth_metrics
from aether.evaluation.pixel_metrics import video_pixel_metrics
from aether.evaluation.pose_metrics import camera_pose_metrics
from aether.geometry import cameras_to_raymap, disparity_to_depth, mirror_poses
from aether.geometry.depth import fill_invalid_depth
from aether.geometry.smoothing import smooth_cameras
from aether.modalities.clip import ClipGeometry
from aether.tasks import TASKS as REGISTERED_TASKS
from aether.tasks import color_inputs

log = logging.getLogger(__name__)

TASKS = ("reconstruction", "prediction", "planning")
"""The tasks evaluated when none are named (any registered task can be)."""


@dataclass
class TaskResult:
    """Scores of one task on one clip, the baseline's scores and the arrays behind them."""

    metrics: dict[str, float]
    baseline: dict[str, float]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


def _depth_columns(scores: dict[str, float]) -> dict[str, float]:
    """The report's depth columns (Abs Rel, δ<1.25) of the full video depth metric set."""
    return {k: scores[k] for k in ("abs_rel", "delta_1_25")}


def _pose_metrics(pred: Tensor, gt: Tensor) -> dict[str, float]:
    """camera_pose_metrics, or the static-camera value when the prediction does not move."""
    if float(pred[:, :3, 3].double().var(0).sum()) <= 1e-20:
        return static_camera_metrics(gt)
    return camera_pose_metrics(pred.double(), gt.double(), static_gt="nan")


@contextlib.contextmanager
def sampler_for(module: Any, *, progress: bool = False) -> Iterator[Any]:
    """An :class:`~aether.pipeline.sampler.AetherSampler` on the module's inference weights, its
    backend, target stack and spec, and a copy of its noise scheduler.

    The transformer is frozen and put in eval mode while sampling; its trainable flags and mode are
    restored on exit.
    """
    from aether.models.spec import build_scheduler
    from aether.pipeline.sampler import AetherSampler

    transformer = module.inference_transformer()
    flags = [p.requires_grad for p in transformer.parameters()]
    was_training = transformer.training
    scheduler = build_scheduler(
        {"_class_name": type(module.noise_scheduler).__name__, **dict(module.noise_scheduler.config)}
    )
    transformer.eval().requires_grad_(False)
    sampler = AetherSampler(
        transformer,
        module.backend,
        scheduler,
        module.prompt_embedding.detach(),
        spec=module.spec,
        targets=module.target_stack,
    )
    sampler.progress = progress
    try:
        yield sampler
    finally:
        for p, flag in zip(transformer.parameters(), flags):
            p.requires_grad_(flag)
        transformer.train(was_training)


def evaluate_clip(
    sampler: Any,
    clip: ClipBatch,
    index: int,
    *,
    tasks: Sequence[str] = TASKS,
    steps: dict[str, int] | None = None,
    action: bool = True,
    guidance: float = 1.0,
    seed: int = 0,
    ensemble: int = 1,
    smooth: str = "none",
    ablate_camera: bool = False,
    camera_control: bool = False,
    image_memory: bool | None = None,
) -> dict[str, TaskResult]:
    """Run each task on clip ``index`` of a batch and score it.

    Args:
        sampler: the sampler (see :func:`sampler_for`).
        clip: a DataModule batch (:class:`~aether.data.batch.ClipBatch`: video (B,T,3,H,W) in [-1,1],
            depth, valid, K, c2w, fps, dmax).
        index: which clip of the batch.
        tasks: registered task names (their required inputs are cut from the clip).
        steps: denoising steps per task (default: the task's own).
        action: condition prediction and planning on the true trajectory.
        guidance: classifier-free guidance of prediction and planning (1 = none).
        seed: sampling seed.
        ensemble: reconstruction samples averaged (the pipeline's test-time ensemble).
        smooth: smoothing of the reconstructed cameras before scoring (a
            :func:`~aether.geometry.smoothing.smooth_cameras` method; "none" scores them as decoded).
        ablate_camera: also sample prediction and planning with the left-right mirrored camera
            trajectory (:func:`~aether.geometry.mirror_poses`) and without any (same seed), scored as
            ``psnr_mirrored`` / ``psnr_without_camera`` (and SSIM): a model that follows the camera
            scores higher with the true one.
        camera_control: also score how closely generated videos follow the trajectory (with the
            true camera, and without one when ``ablate_camera``): CamI2V's ``rot_err``,
            ``trans_err`` and ``cammc`` of the cameras the annotation pipeline recovers from them,
            beside (as the baseline) those it recovers from the true video; a clip whose true video's
            recovery is off (RotErr > :data:`RECOVERY_GATE`) is not scored (NaN;
            ``camera_control_scored`` is 1 on the clips that are).
        image_memory: for a model with a memory condition, give prediction and planning the first
            frame lifted with the model's own depth of it, rendered along the trajectory each run is
            given (:func:`~aether.pipeline.memory.sample_with_image_memory`); also score the same
            sampling without the memory (``_without_memory``) and the memory render alone, its holes
            filled with the first frame (baseline ``_render``); default: when the model has one.
    """
    specs = {task: REGISTERED_TASKS.get(task) for task in tasks}
    steps = steps or {}
    device = sampler.device
    num_frames, _, height, width = clip["video"][index].shape
    actions: dict[str, Action] = {}
    if action and sampler.takes_action:
        dmax = ClipGeometry.of(clip).dmax  # resolved once, as the training encoder did
        dmax = 1.0 if dmax is None else float(dmax[index])
        K, true = clip["K"][index].float(), clip["c2w"][index].float()
        for name, c2w in (("true", true), ("mirrored", mirror_poses(true))):
            actions[name] = Action.of(c2w, K, dmax, height, width, int(sampler.backend.spatial_factor))
    results: dict[str, TaskResult] = {}
    for task in tasks:
        kwargs: dict[str, Any] = {
            "num_frames": num_frames,
            "fps": float(clip["fps"][index]),
            "generator": torch.Generator(device=device).manual_seed(seed),
            "num_inference_steps": steps.get(task),
        }
        inputs = _task_inputs(specs[task], clip, index, device)
        if specs[task].scored_on == "geometry":
            out = sampler(task, num_samples=ensemble, **inputs, **kwargs)
            metrics, baseline, outputs = _score_geometry(out, clip, index, sampler.min_disparity, smooth)
        else:
            kwargs["guidance_scale"] = guidance
            metrics, baseline, outputs = _score_generation(
                sampler, specs[task], clip, index, inputs, kwargs, actions, seed=seed,
                ablate_camera=ablate_camera, camera_control=camera_control, image_memory=image_memory,
            )  # fmt: skip
        results[task] = TaskResult(metrics=metrics, baseline=baseline, outputs=outputs)
    return results


def _score_geometry(
    out: Any, clip: ClipBatch, index: int, min_disparity: float, smooth: str
) -> tuple[dict[str, float], dict[str, float], dict[str, np.ndarray]]:
    """Metrics, baselines and outputs of a reconstruction (see :func:`evaluate_clip`): depth against
    the per-frame mean depth, cameras (smoothed with ``smooth``) against the static camera."""
    depth = clip["depth"][index].float().cpu()
    valid = clip["valid"][index].cpu() & (depth > 0)
    gt_c2w = clip["c2w"][index].float().cpu()
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    outputs = {"rgb": out.rgb.numpy()}
    if out.disparity is not None:
        pred_depth, pred_valid = disparity_to_depth(out.disparity.float(), min_disparity)
        pred_depth = fill_invalid_depth(pred_depth, pred_valid & out.valid)
        metrics |= _depth_columns(video_depth_metrics(pred_depth, depth, align="scale", mask=valid))
        baseline |= _depth_columns(
            video_depth_metrics(frame_mean_depth(depth, valid), depth, align="scale", mask=valid)
        )
        outputs["depth"] = pred_depth.numpy()
    if out.c2w is not None:
        pred_c2w = smooth_cameras(out.c2w.double(), smooth).float()
        metrics |= _pose_metrics(pred_c2w, gt_c2w)
        baseline |= static_camera_metrics(gt_c2w)
        outputs["c2w"] = pred_c2w.numpy()
    return metrics, baseline, outputs


@dataclass(frozen=True)
class Action:
    """A camera trajectory given to a generating task: its raymap (T, 6, h, w) and its cameras
    relative to the first, translations in the model's normalised units (times ``dmax``), with K."""

    c2w: Tensor
    K: Tensor
    raymap: Tensor
    cameras: Tensor

    @classmethod
    def of(cls, c2w: Tensor, K: Tensor, dmax: float, height: int, width: int, downsample: int) -> Action:
        from aether.pipeline.trajectory import Trajectory

        raymap = cameras_to_raymap(c2w, K, height, width, dmax=dmax, downsample=downsample)
        cameras, _ = Trajectory(c2w, K, dmax=dmax).model_cameras()
        return cls(c2w, K, raymap, cameras)


def generate(
    sampler: Any, task: str, inputs: dict[str, Any], action: Action | None, *, memory: bool, **kwargs: Any
) -> tuple[Any, tuple[Tensor, Tensor] | None]:
    """Sample a generating task given ``action`` (or none) and, with ``memory`` (and an action), the
    first frame lifted with the model's own depth and rendered along the action
    (:func:`~aether.pipeline.memory.sample_with_image_memory`).

    Returns the sampler's output and the memory render (video (T,3,H,W) in [-1,1], mask (T,H,W)) or None.
    """
    from aether.pipeline.memory import sample_with_image_memory

    raymap = None if action is None else action.raymap.to(sampler.device)
    if not memory or action is None:
        return sampler(task, raymap=raymap, **inputs, **kwargs), None
    rest = {k: v for k, v in inputs.items() if k != "observation"}
    out, render, mask = sample_with_image_memory(
        sampler, task, observation=inputs["observation"], c2w=action.cameras, K=action.K, raymap=raymap,
        **rest, **kwargs,
    )  # fmt: skip
    return out, (render, mask)


def _score_generation(
    sampler: Any,
    spec: Any,
    clip: dict[str, Any],
    index: int,
    inputs: dict[str, Any],
    kwargs: dict[str, Any],
    actions: dict[str, Action],
    *,
    seed: int,
    ablate_camera: bool,
    camera_control: bool,
    image_memory: bool | None,
) -> tuple[dict[str, float], dict[str, float], dict[str, np.ndarray]]:
    """Metrics, baselines and outputs of a generating task (see :func:`evaluate_clip`): the frames
    that were not given scored against the truth, the first-frame copy and its best blur, each
    ablation run from the same seed."""
    device = sampler.device
    video = clip["video"][index].float()
    target = (video.cpu() + 1) / 2
    num_frames = len(target)
    given = spec.given_frames(num_frames)
    keep = [t for t in range(num_frames) if t not in given]
    copy = target[:1].expand(len(keep), -1, -1, -1)
    baseline = _pixels(video_pixel_metrics(copy, target[keep]))
    blurred = [
        _pixels(video_pixel_metrics(b[None].expand_as(copy), target[keep])) for b in blurred_copies(target[0])
    ]
    baseline |= {f"{k}_blurred": max(b[k] for b in blurred) for k in ("psnr", "ssim")}
    memory = sampler.has_memory if image_memory is None else bool(image_memory)
    true = actions.get("true")
    runs: list[tuple[str, Action | None, bool]] = [("", true, memory and true is not None)]
    if ablate_camera and true is not None:
        runs += [("_mirrored", actions["mirrored"], memory), ("_without_camera", None, False)]
    if memory and true is not None:
        runs.append(("_without_memory", true, False))
    metrics: dict[str, float] = {}
    outputs: dict[str, np.ndarray] = {}
    gt_c2w = clip["c2w"][index].float().cpu()
    K = clip["K"][index].float().cpu()
    scorable = False
    if camera_control:  # the recovery's own errors on the true video: its floor, and the gate
        truth, _ = video_camera_errors(
            target.permute(0, 2, 3, 1), clip["depth"][index].float().cpu(), K, gt_c2w
        )
        scorable = truth["rot_err"] <= RECOVERY_GATE and math.isfinite(truth["trans_err"])
        baseline |= {k: v if scorable else math.nan for k, v in truth.items()}  # over the scored clips
        metrics["camera_control_scored"] = float(scorable)
    for suffix, act, lifted in runs:  # each run from the same seed
        kwargs["generator"] = torch.Generator(device=device).manual_seed(seed)
        out, memory_render = generate(sampler, spec.name, inputs, act, memory=lifted, **kwargs)
        if memory_render is not None and not suffix:  # the memory alone, its holes filled with frame 0
            render, mask = memory_render
            filled = torch.where(mask[:, None], (render + 1) / 2, target[:1])
            scores = _pixels(video_pixel_metrics(filled[keep], target[keep]))
            baseline |= {f"{k}_render": v for k, v in scores.items()}
        pred = out.rgb.permute(0, 3, 1, 2).float()
        scores = _pixels(video_pixel_metrics(pred[keep], target[keep]))
        metrics |= {f"{k}{suffix}": v for k, v in scores.items()}
        baseline |= {f"{k}{suffix}": baseline[k] for k in scores}
        if camera_control and suffix in ("", "_without_camera"):
            control, _ = camera_control_of(out, K, gt_c2w, sampler.min_disparity)
            metrics |= {f"{k}{suffix}": v if scorable else math.nan for k, v in control.items()}
            baseline |= {f"{k}{suffix}": baseline[k] for k in control}
        if not suffix:
            outputs = {"rgb": out.rgb.numpy()}
    return metrics, baseline, outputs


RECOVERY_GATE = 0.5
"""Camera control is scored on a clip only when the recovery gets its true video's cameras right: a
RotErr (summed over the frames, radians) of at most this much (failures, e.g. a PnP flip on a pure
turn at 64×96, are tens of radians)."""


def camera_control_of(
    out: Any, K: Tensor, requested: Tensor, min_disparity: float
) -> tuple[dict[str, float], np.ndarray | None]:
    """CamI2V's camera-control errors (RotErr in radians, TransErr, CamMC) of a generated video: its
    cameras recovered by the annotation pipeline (feature tracks + bundle adjustment, no model
    weights) with the depth generated beside it, against the ``requested`` (T,4,4) trajectory.

    Returns the errors and the recovered cameras (T,4,4); NaN errors and None, with a warning naming
    the reason, when the recovery fails.
    """
    if out.disparity is None:
        return dict.fromkeys(("rot_err", "trans_err", "cammc"), math.nan), None
    depth, valid = disparity_to_depth(out.disparity.float(), min_disparity)
    return video_camera_errors(out.rgb.float(), torch.where(valid, depth, 0.0), K, requested)


def video_camera_errors(
    rgb: Tensor, depth: Tensor, K: Tensor, requested: Tensor
) -> tuple[dict[str, float], np.ndarray | None]:
    """CamI2V's errors of the cameras the annotation pipeline recovers from a video rgb (T,H,W,3) in
    [0,1] with its depth (T,H,W) (0: unknown) and intrinsics K (T,3,3), against ``requested``
    (T,4,4); NaN errors and None, with a warning, when the recovery fails."""
    from aether.evaluation.camera_control import camera_control_errors, recover_cameras

    nan = {"rot_err": math.nan, "trans_err": math.nan, "cammc": math.nan}
    try:
        recovered = recover_cameras(rgb, K, "annotate", depth=depth.numpy())
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
        log.warning("camera recovery of a video failed (%s): camera control scored NaN", err)
        return nan, None
    errors = camera_control_errors(requested.double(), torch.as_tensor(recovered))
    return {k: float(errors[k]) for k in nan}, recovered


def _task_inputs(spec: Any, clip: Mapping[str, Any], index: int, device: Any) -> dict[str, Any]:
    """The sampler arguments for ``spec``'s required inputs from clip ``index``: the colour inputs cut
    from its video, the others (read by signal condition modalities) as ``signals``."""
    colors = color_inputs(clip["video"][index].float())
    out: dict[str, Any] = {}
    signals = {}
    for key in spec.required_inputs:
        if key in colors:
            out[key] = colors[key].to(device)
        elif isinstance(clip.get(key), Tensor):
            signals[key] = clip[key][index]
        else:
            raise ValueError(f"{spec.name}: expected the clip to hold {key!r}, got keys {sorted(clip)}")
    return {**out, "signals": signals} if signals else out


def _pixels(scores: dict[str, Any]) -> dict[str, float]:
    return {k: float(scores[k]) for k in ("psnr", "ssim") if scores.get(k) is not None}


def evaluate_batch(
    module: Any,
    batch: ClipBatch,
    *,
    tasks: Sequence[str] = TASKS,
    steps: dict[str, int] | None = None,
    action: bool = True,
    seed: int = 0,
    ensemble: int = 1,
    guidance: float = 1.0,
    smooth: str = "none",
    ablate_camera: bool = False,
    camera_control: bool = False,
    image_memory: bool | None = None,
) -> dict[str, TaskResult]:
    """Evaluate every clip of a batch (see :func:`evaluate_clip`); metrics are averaged over the
    clips (outputs of clip 0 kept)."""
    batch = cast(ClipBatch, module.target_stack.prepare(batch))  # the same keys, geometry resolved
    per_clip = []
    with sampler_for(module) as sampler:
        for i in range(batch["video"].shape[0]):
            per_clip.append(
                evaluate_clip(
                    sampler,
                    batch,
                    i,
                    tasks=tasks,
                    steps=steps,
                    action=action,
                    guidance=guidance,
                    seed=seed,
                    ensemble=ensemble,
                    smooth=smooth,
                    ablate_camera=ablate_camera,
                    camera_control=camera_control,
                    image_memory=image_memory,
                )
            )
    return {
        task: TaskResult(
            metrics=_mean([r[task].metrics for r in per_clip]),
            baseline=_mean([r[task].baseline for r in per_clip]),
            outputs=per_clip[0][task].outputs,
        )
        for task in per_clip[0]
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {k: float(np.mean([r[k] for r in rows if math.isfinite(r[k])] or [math.nan])) for k in keys}


def log_images(module: Any, task: str, result: TaskResult, batch: ClipBatch, batch_idx: int) -> list[Path]:
    """Write the task's pictures (colour, depth, trajectory) under the logger's folder and hand
    them to the logger when it takes images (TensorBoard ``add_image`` / W&B ``log_image``)."""
    from aether.training.pictures import task_pictures

    trainer = module.trainer
    root = Path(trainer.log_dir or trainer.default_root_dir) / "images" / f"step{trainer.global_step:07d}"
    paths = task_pictures(root, task, result, batch, 0, prefix=f"batch{batch_idx}")
    for logger in trainer.loggers:
        for path in paths:
            tag = f"val/{task}/{path.stem}"
            if hasattr(logger, "log_image"):
                logger.log_image(key=tag, images=[str(path)], step=trainer.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):
                import imageio.v3 as iio

                logger.experiment.add_image(tag, iio.imread(path), trainer.global_step, dataformats="HWC")
    return paths
