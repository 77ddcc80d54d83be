"""Worlds longer than one window: chained windows with a geometric memory, stitched into one World4D.

A camera path longer than the model's window is generated window after window:

1. window 0 is a prediction from the image along the path's first ``window`` poses (for a model with a
   memory condition, given the image lifted with the model's own depth of it as its memory:
   :func:`aether.pipeline.memory.sample_with_image_memory`);
2. window j > 0 starts on the last ``4(k−1)+1`` frames generated so far (``k`` context latent frames):
   they are its context (latent frames 0 … k−1), its action is the path's next ``window`` poses
   expressed relative to its first frame, and with a memory the point cloud of every frame generated so
   far is rendered into its cameras (:func:`aether.modalities.render_memory`) — given as the signals
   of the model's memory condition ("cache") when it has one, else kept as the "render the memory
   alone" baseline;
3. each new window is aligned to the world so far on the shared frames (disparity scale, then the
   rigid motion of those cameras: :func:`aether.pipeline.windows.align_to`, as reconstruction merges
   windows) and its new frames appended: one world in one global frame and scale, the first
   window's.

Units: window 0's depth is in its own normalised units (nearest point ≈ 1) and the requested path,
times its ``dmax``, is in the same units. A later window normalises to its own nearest point, so its
action is scaled by the context frames' largest (global) disparity. With a planning goal the last
window is a plan toward it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from aether.geometry import check_poses, disparity_to_depth, latent_frame_count
from aether.modalities.base import MEMORY_INPUTS
from aether.pipeline.memory import Memory, memory_splats, sample_with_image_memory
from aether.pipeline.trajectory import Trajectory
from aether.pipeline.windows import WindowResult, align_to
from aether.pipeline.world import World4D

logger = logging.getLogger(__name__)

MEMORY_CAMERAS = ("requested", "generated")


def check_rollout_trajectory(trajectory: Trajectory, window: int) -> None:
    """One ValueError for a path a rollout cannot follow: non-finite, non-rigid or shorter than a window."""
    c2w, K = trajectory.c2w, trajectory.K
    problem = None
    if not (torch.isfinite(c2w).all() and torch.isfinite(K).all()):
        bad = (~torch.isfinite(c2w).flatten(1).all(1)).nonzero().flatten()[:5].tolist()
        problem = f"non-finite values (poses {bad})"
    elif len(trajectory) < window:
        problem = f"{len(trajectory)} poses, fewer than one window of {window} (use predict)"
    else:
        try:
            check_poses(c2w, "poses")
        except ValueError as err:
            problem = f"not rigid ({err})"
    if problem is not None:
        raise ValueError(
            f"rollout trajectory: expected at least {window} finite rigid camera-to-world poses, "
            f"got {problem}"
        )


def rollout_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """Window starts every ``window − overlap`` frames; the last window ends at ``num_frames`` (it may
    overlap its predecessor by more than ``overlap``)."""
    if not 1 <= overlap < window:
        raise ValueError(f"overlap: expected 1 <= overlap < window = {window}, got {overlap}")
    if num_frames < window:
        raise ValueError(f"expected at least one window of {window} frames, got {num_frames}")
    starts = list(range(0, num_frames - window + 1, window - overlap))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def _frames(result: WindowResult, sel: slice) -> Tensor:
    """(n, 3, H, W) in [-1, 1] of a result's rgb frames."""
    return result.rgb[sel].permute(0, 3, 1, 2).float() * 2 - 1


def _append(world: WindowResult, window: WindowResult, overlap: int) -> WindowResult:
    keep = window.frames(slice(overlap, None))
    return WindowResult(
        *(torch.cat([getattr(world, k), getattr(keep, k)]) for k in ("rgb", "disparity", "c2w", "K"))
    )


class Rollout:
    """A world grown window by window: :meth:`start` from an image, then :meth:`extend` with the next
    requested poses, each call generating one window (the loop body of :func:`rollout`, which is built
    on it; an interactive drive calls :meth:`extend` once per step and never regenerates the past).

    Poses are camera-to-world in the world's global frame and units: the first requested pose is the
    first frame's camera, and window 0's depth is in its own normalised units (nearest point ≈ 1).

    Args:
        pipe: an :class:`~aether.pipeline.AetherPipeline`.
        window: frames per window (default: the model's largest trained count, else its sample frames).
        context_frames: k, the latent frames each later window continues from (4(k−1)+1 frames).
        memory: render the point cloud of the frames so far into each new window's cameras (needs a
            disparity target); given as the model's memory condition when it has one, and returned as
            ``modalities["memory.rgb"]`` / ``["memory.mask"]`` either way.
        memory_cameras: lift and render with the "requested" path (default) or the "generated" cameras.
        memory_stride: keep every n-th pixel (each axis) of a frame in the memory.
        memory_frames: render only the points of this many frames, those seen from the cameras
            nearest each new window's (:class:`~aether.pipeline.memory.Memory`'s ``max_frames``; None:
            all), so a window takes the same time however long the world grows.
        image_memory: window 0 is given the image lifted with the model's own depth of it as its
            memory (:func:`~aether.pipeline.memory.sample_with_image_memory`: a first pass for the
            depth, then the window); default: when ``memory`` and the model has a memory condition.
        fps, num_inference_steps, guidance_scale, dynamic_cfg: sampling settings of every window
            (the model's defaults when None).
        seed, generator: window i draws from ``generator``, else from a generator seeded ``seed + i``.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        window: int | None = None,
        context_frames: int = 1,
        memory: bool = True,
        memory_cameras: str = "requested",
        memory_stride: int = 1,
        memory_frames: int | None = None,
        image_memory: bool | None = None,
        fps: float | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        dynamic_cfg: bool | None = None,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        if memory_cameras not in MEMORY_CAMERAS:
            raise ValueError(f"memory_cameras: expected one of {MEMORY_CAMERAS}, got {memory_cameras!r}")
        sampler, policy = pipe.sampler, pipe.policy
        window = rollout_window(pipe) if window is None else int(window)
        sampler.check_frames(window, policy, strict=True)
        if int(context_frames) != context_frames or not 1 <= context_frames < latent_frame_count(window):
            raise ValueError(
                f"context_frames: expected an integer in [1, {latent_frame_count(window) - 1}], "
                f"got {context_frames!r}"
            )
        decoded = decoded_outputs(pipe)
        self.has_depth, self.has_cameras = "disparity" in decoded, "c2w" in decoded
        if memory and not self.has_depth:
            raise ValueError(
                f"memory needs a model that decodes disparity; its targets {pipe.targets.names} decode "
                f"{sorted(decoded)}"
            )
        self.pipe, self.window, self.context_frames = pipe, window, int(context_frames)
        self.overlap = 4 * (self.context_frames - 1) + 1
        self.fps = sampler.check_fps(fps, policy)
        self.memory, self.memory_cameras, self.memory_stride = bool(memory), memory_cameras, memory_stride
        self.memory_frames = memory_frames
        has_memory = bool(memory) and sampler.has_memory
        if image_memory and not has_memory:
            raise ValueError("image_memory: expected memory=True and a model with a memory condition")
        self.image_memory = has_memory if image_memory is None else bool(image_memory)
        self.sampling = {
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "dynamic_cfg": dynamic_cfg,
        }
        self.seed, self.generator = seed, generator
        self.started = False

    def start(self, image: Any, goal: Any = None) -> Rollout:
        """Begin (again) from ``image`` (and an optional planning ``goal`` for :meth:`extend`'s
        ``plans``): no frames yet. Sets ``crop`` (see ``AetherPipeline._crop_images``)."""
        images = {"observation": image} if goal is None else {"observation": image, "goal": goal}
        self.tensors, self.crop = self.pipe._crop_images(images)
        self.goal = goal
        H, W = self.pipe.height, self.pipe.width
        splats = memory_splats(self.pipe.sampler)
        self.store = Memory(self.memory_stride, *splats, self.memory_frames) if self.memory else None
        self.world: WindowResult | None = None
        self.req_c2w = torch.zeros(0, 4, 4, dtype=torch.float64)
        self.req_K = torch.zeros(0, 3, 3, dtype=torch.float64)
        self.memory_rgb = torch.zeros(0, H, W, 3)
        self.memory_mask = torch.zeros(0, H, W, dtype=torch.bool)
        self.starts: list[int] = []
        self.started = True
        return self

    @property
    def num_frames(self) -> int:
        """Frames generated so far."""
        return 0 if self.world is None else len(self.world.rgb)

    @property
    def step_frames(self) -> int:
        """The most poses one :meth:`extend` after the first may add (``window − overlap``)."""
        return self.window - self.overlap

    def extend(self, c2w: Tensor, K: Tensor, *, plans: bool = False) -> WindowResult:
        """Append the requested poses ``c2w`` (n, 4, 4) with intrinsics ``K`` (n, 3, 3) at the model's
        size and generate the window that ends on them: the first call takes exactly ``window`` poses
        (its first is the image's camera), a later one 1 … :attr:`step_frames`. ``plans``: this window
        is a plan toward :meth:`start`'s goal. Returns the world so far (the stitched frames)."""
        if not self.started:
            raise RuntimeError("Rollout.extend before Rollout.start(image)")
        c2w, K = torch.as_tensor(c2w).double(), torch.as_tensor(K).double()
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or K.shape != (len(c2w), 3, 3):
            shapes = f"{tuple(c2w.shape)} and {tuple(K.shape)}"
            raise ValueError(f"expected poses (n, 4, 4) and intrinsics (n, 3, 3), got {shapes}")
        if not (torch.isfinite(c2w).all() and torch.isfinite(K).all()):
            raise ValueError("expected finite camera poses and intrinsics for the next window")
        check_poses(c2w, "poses")
        first = self.world is None
        if (first and len(c2w) != self.window) or (not first and not 1 <= len(c2w) <= self.step_frames):
            expected = f"{self.window}" if first else f"1 to {self.step_frames}"
            raise ValueError(f"expected {expected} new poses for this window, got {len(c2w)}")
        if plans and self.goal is None:
            raise ValueError("plans=True needs a goal image given to start()")
        pipe, window, overlap = self.pipe, self.window, self.overlap
        sampler, policy = pipe.sampler, pipe.policy
        H, W = pipe.height, pipe.width
        self.req_c2w = torch.cat([self.req_c2w, c2w])
        self.req_K = torch.cat([self.req_K, K])
        req_c2w, req_K, world, store = self.req_c2w, self.req_K, self.world, self.store
        start = len(req_c2w) - window
        index = len(self.starts)
        sel = slice(start, start + window)
        shared = 0 if world is None else len(world.rgb) - start
        signals = None
        memory_rgb = torch.zeros(window - shared, H, W, 3)
        memory_mask = torch.zeros(window - shared, H, W, dtype=torch.bool)
        if store is not None and world is not None:
            cams = req_c2w if self.memory_cameras == "requested" else None
            c2w_render = cams[sel] if cams is not None else _extend_cameras(world.c2w.double(), req_c2w, sel)
            video, mask = store.render(c2w_render, req_K[sel], H, W)
            memory_rgb = ((video[shared:] + 1) / 2).permute(0, 2, 3, 1)
            memory_mask = mask[shared:]
            if sampler.has_memory:
                signals = dict(zip(MEMORY_INPUTS, (video, mask)))
        scale = 1.0
        if world is not None and self.has_depth:
            scale = float(world.disparity[start : start + overlap].max().clamp_min(1e-6))
        action = Trajectory(req_c2w[sel], req_K[sel], dmax=scale) if sampler.raymap_channels else None
        raymap = (
            None
            if action is None
            else action.raymap(window, H, W, downsample=int(pipe.backend.spatial_factor))
        )
        task = "planning" if plans else "prediction"
        inputs: dict[str, Any] = {"goal": self.tensors["goal"]} if plans else {}
        if world is None:
            inputs["observation"] = self.tensors["observation"]
        else:
            context = _frames(world, slice(start, start + overlap))
            inputs["observation"] = context[0]
            if self.context_frames > 1:
                inputs["context"] = context
        sampling = {
            "policy": policy, "num_frames": window, "fps": self.fps, "raymap": raymap, **self.sampling,
            "generator": _window_generator(self.generator, self.seed, index, pipe.device),
        }  # fmt: skip
        if world is None and self.image_memory:  # the image lifted with the model's own depth
            observation = inputs.pop("observation")
            out, video, mask = sample_with_image_memory(
                sampler, task, observation=observation, c2w=req_c2w[sel], K=req_K[sel], **sampling, **inputs
            )
            memory_rgb, memory_mask = ((video + 1) / 2).permute(0, 2, 3, 1), mask
        else:
            out = sampler(task, signals=signals, **sampling, **inputs)
        piece = WindowResult(
            out.rgb,
            out.disparity if self.has_depth else torch.zeros(window, H, W),
            out.c2w.double() if self.has_cameras else relative_of(req_c2w[sel]),
            out.K if self.has_cameras else req_K[sel].float(),
        )
        if world is None:
            world = WindowResult(piece.rgb, piece.disparity, relative_of(piece.c2w), piece.K.float())
        else:
            aligned = align_to(world, piece, shared) if self.has_depth else _rigid_only(world, piece, shared)
            world = _append(world, aligned, shared)
        if store is not None:
            new = slice(shared, window)
            depth, valid = disparity_to_depth(world.disparity[start:][new].float(), sampler.min_disparity)
            requested = self.memory_cameras == "requested"
            cams = req_c2w[sel][new] if requested else world.c2w[start:][new]
            Ks = req_K[sel][new] if requested else world.K[start:][new]
            store.add(world.rgb[start:][new], depth, cams, Ks, valid)
        self.world = world
        self.starts.append(start)
        self.memory_rgb = torch.cat([self.memory_rgb, memory_rgb])
        self.memory_mask = torch.cat([self.memory_mask, memory_mask])
        return world

    def result(self) -> World4D:
        """The World4D of the frames so far (see :func:`rollout`'s Returns)."""
        if self.world is None:
            raise RuntimeError("no frames yet: call Rollout.extend first")
        store = self.store
        meta = {
            "task": "rollout" if self.goal is None else "rollout_plan",
            "mode": self.pipe.policy.name,
            "windows": list(self.starts),
            "window": self.window,
            "context_frames": self.context_frames,
            "memory": self.memory,
            "memory_condition": bool(self.memory and self.pipe.sampler.has_memory),
            "memory_points": 0 if store is None else len(store),
        }
        result = self.pipe._world(self.world, self.fps, meta)
        modalities = (
            {}
            if store is None
            else {"memory.rgb": self.memory_rgb.numpy(), "memory.mask": self.memory_mask.numpy()}
        )
        out_world = replace(result, requested_c2w=self.req_c2w.float().numpy(), modalities=modalities)
        if not self.has_depth:
            out_world = replace(out_world, depth=None, disparity=None, valid=None)
        return out_world


def rollout(
    pipe: Any,
    image: Any,
    trajectory: Trajectory,
    *,
    goal: Any = None,
    on_window: Any = None,
    **options: Any,
) -> World4D:
    """Generate along ``trajectory`` (any length ≥ one window) from ``image``; see the module docstring.

    Args:
        pipe: an :class:`~aether.pipeline.AetherPipeline`.
        image: the observation (path, PIL, array or tensor; see :func:`~aether.pipeline.pipeline.to_image`).
        trajectory: the camera path (its intrinsics for the image's or the model's size).
        goal: optional goal image: the last window is a plan toward it.
        on_window: optional callback ``on_window(index, world_so_far)`` after each window.
        options: the :class:`Rollout` options (window, context_frames, memory, memory_cameras,
            memory_stride, memory_frames, image_memory, fps, num_inference_steps, guidance_scale,
            dynamic_cfg, seed, generator).

    Returns:
        A World4D of ``len(trajectory)`` frames: colour, depth (global units), the stitched generated
        cameras (the requested ones for models without a raymap target), ``requested_c2w`` in the same
        units, and the memory renders; ``meta["windows"]`` lists the window starts.
    """
    state = Rollout(pipe, **options)
    window = state.window
    check_rollout_trajectory(trajectory, window)
    state.start(image, goal)
    crop = state.crop
    full = pipe._model_trajectory(trajectory, crop)
    req_c2w, req_K = full.model_cameras()  # global units: window 0's normalised ones
    starts = rollout_starts(len(full), window, state.overlap)
    for index, start in enumerate(starts):
        new = slice(len(state.req_c2w), start + window)
        plans = goal is not None and index == len(starts) - 1  # the last window plans toward the goal
        world = state.extend(req_c2w[new], req_K[new], plans=plans)
        if on_window is not None:
            on_window(index, world)
    return state.result()


def decoded_outputs(pipe: Any) -> set[str]:
    """The ``SampleOutput`` fields the model's target codecs decode ("rgb", "disparity", "c2w", ...)."""
    return {k for codec in pipe.targets.codecs.values() for k in codec.outputs}


def _window_generator(
    generator: torch.Generator | None, seed: int | None, index: int, device: torch.device
) -> torch.Generator | None:
    """The caller's generator, else one seeded with ``seed + index`` (each window its own draws)."""
    if generator is not None or seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(int(seed) + index)


def relative_of(c2w: Tensor) -> Tensor:
    """Poses (T, 4, 4) relative to their first."""
    from aether.geometry import relative_poses

    return relative_poses(c2w.double())


def _rigid_only(world: WindowResult, piece: WindowResult, shared: int) -> WindowResult:
    """Without depth: the window's cameras moved so that its first shared camera is the world's."""
    from aether.geometry import invert_pose

    move = world.c2w[len(world.rgb) - shared].double() @ invert_pose(piece.c2w[0].double())
    return WindowResult(piece.rgb, piece.disparity, move @ piece.c2w.double(), piece.K)


def _extend_cameras(world_c2w: Tensor, requested: Tensor, sel: slice) -> Tensor:
    """Generated cameras for the frames already in the world, continued by the requested motion."""
    from aether.geometry import invert_pose

    known = world_c2w.shape[0]
    out = requested[sel].clone()
    inside = min(known, sel.stop) - sel.start
    out[:inside] = world_c2w[sel.start : sel.start + inside]
    if inside < len(out):  # continue from the last known camera with the requested relative motion
        anchor = world_c2w[sel.start + inside - 1] @ invert_pose(requested[sel.start + inside - 1])
        out[inside:] = anchor @ requested[sel.start + inside : sel.stop]
    return out


def rollout_window(pipe: Any) -> int:
    """The frames per rollout window: the largest trained count, else the transformer's sample frames."""
    if pipe.spec.frames:
        return max(pipe.spec.frames)
    frames = getattr(pipe.transformer.config, "sample_frames", None)
    return int(frames) if frames else 41
