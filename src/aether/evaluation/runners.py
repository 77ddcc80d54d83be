"""Benchmark runners: video depth, camera pose, prediction (VBench) and planning (pixel metrics).

A runner takes an :class:`~aether.evaluation.datasets.EvalDataset` and a prediction source
(saved predictions, the AETHER pipeline with the protocol's windowing, or the CogVideoX
image-to-video baseline), scores every sequence and returns one result dict (per-sequence and
mean metrics, settings, the paper's numbers). Launched distributed, each rank takes every
world-size-th sequence and the results are gathered, so every rank returns the whole result.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from aether.evaluation.datasets import EvalDataset, EvalSequence
from aether.evaluation.depth_metrics import VideoDepthMetric
from aether.evaluation.pixel_metrics import VideoPixelMetric
from aether.evaluation.pose_metrics import CameraPoseMetric, sim3_align_trajectory
from aether.evaluation.report import PAPER_NUMBERS
from aether.evaluation.vbench import DIMENSIONS, VBenchModels, vbench_scores, weighted_total
from aether.visualize import plot_trajectories

BENCHMARKS = ("video-depth", "camera-pose", "prediction", "planning")
# The published protocols' windowing, passed to the pipeline's reconstruct().
WINDOWS: dict[str, dict[str, Any]] = {
    "video-depth": {
        "window": 41,
        "stride": 8,
        "spatial_window": (480, 720),
        "spatial_overlap": (60, 90),
    },
    "camera-pose": {"window": 41, "stride": 32},
}
COGVIDEOX_NEGATIVE_PROMPT = (
    "static background, static camera, slow motion, slow camera movement, low dynamic degree"
)
COGVIDEOX_GUIDANCE = 6.0


# --------------------------------------------------------------------------- distribution
def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def split_for_rank(items: list[Any]) -> list[Any]:
    """This rank's share: every world-size-th item starting at its rank."""
    rank, world = rank_and_world()
    return items[rank::world]


def gather_dicts(local: dict[str, Any]) -> dict[str, Any]:
    """Merge per-rank dicts on every rank (all_gather_object); identity without distribution."""
    import torch.distributed as dist

    _, world = rank_and_world()
    if world == 1:
        return local
    parts: list[dict[str, Any] | None] = [None] * world
    dist.all_gather_object(parts, local)
    return {k: v for part in parts for k, v in (part or {}).items()}


# --------------------------------------------------------------------------- sources
def to_uint8_video(x: Any) -> np.ndarray:
    """A video as uint8 (T,H,W,3): uint8 passes; floats in [0,1] (or [-1,1] if negative values);
    (T,3,H,W) channel-first is transposed."""
    v = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if v.ndim == 5 and v.shape[0] == 1:
        v = v[0]
    if v.ndim == 4 and v.shape[1] == 3 and v.shape[-1] != 3:
        v = v.transpose(0, 2, 3, 1)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"video: expected (T,H,W,3) or (T,3,H,W), received {v.shape}")
    if v.dtype == np.uint8:
        return v
    v = v.astype(np.float32)
    if v.min() < 0:
        v = (v + 1) / 2
    return (v.clip(0, 1) * 255).round().astype(np.uint8)


class SavedPredictions:
    """Predictions saved as ``<dir>/<sequence>.npz`` with ``depth`` (T,H,W) and/or ``c2w`` (T,4,4)
    (reconstruction), ``rgb`` (T,H,W,3) uint8 (prediction and planning). A ``World4D.save``
    directory per sequence (``<dir>/<sequence>/``) is read through ``World4D.load``."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).expanduser()
        if not self.dir.is_dir():
            raise FileNotFoundError(
                f"{self.dir}: missing; expected a directory of <sequence>.npz predictions"
            )

    def _load(self, seq: EvalSequence, key: str) -> np.ndarray:
        path = self.dir / f"{seq.name}.npz"
        if path.is_file():
            with np.load(path) as z:
                if key not in z:
                    raise ValueError(f"{path}: expected a '{key}' array, found {sorted(z.files)}")
                return z[key]
        if (self.dir / seq.name).is_dir():
            from aether.pipeline import World4D

            world = World4D.load(self.dir / seq.name)
            return np.asarray({"c2w": world.c2w, "depth": world.depth, "rgb": world.rgb}[key])
        raise FileNotFoundError(f"{path}: missing; expected the predictions of sequence {seq.name!r}")

    def reconstruct(self, seq: EvalSequence, task: str) -> dict[str, np.ndarray]:
        return {
            "depth" if task == "video-depth" else "c2w": self._load(
                seq, "depth" if task == "video-depth" else "c2w"
            )
        }

    def predict(self, seq: EvalSequence) -> np.ndarray:
        return to_uint8_video(self._load(seq, "rgb"))

    plan = predict


def _accepted_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs), []
    return {k: v for k, v in kwargs.items() if k in params}, [k for k in kwargs if k not in params]


class PipelineSource:
    """Runs :class:`aether.pipeline.AetherPipeline` with the protocol's windowing per benchmark
    (``WINDOWS``; options the pipeline does not take are listed in ``ignored_windowing``, e.g. the
    spatial windows, which the pipeline chooses itself at its model resolution).

    ``action=True`` passes the ground-truth trajectory (relative to frame 0) to predict/plan;
    ``num_inference_steps`` overrides the tasks' defaults (4 for reconstruction, 50 otherwise);
    ``ensemble`` reconstruction samples are averaged per window (the pipeline's test-time ensemble)."""

    def __init__(
        self,
        model_dir: str | Path,
        base: str | Path | None = None,
        device: str | None = None,
        action: bool = False,
        seed: int = 0,
        num_inference_steps: int | None = None,
        ensemble: int = 1,
    ) -> None:
        from aether.pipeline import AetherPipeline

        kwargs = {} if base is None else {"base": str(base)}
        self.pipe = AetherPipeline.from_pretrained(str(model_dir), **kwargs)
        if device is not None and hasattr(self.pipe, "to"):
            self.pipe = self.pipe.to(device)
        self.action, self.seed = action, seed
        self.steps = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
        self.ensemble = ensemble
        self.ignored_windowing: list[str] = []

    def reconstruct(self, seq: EvalSequence, task: str) -> dict[str, np.ndarray]:
        kwargs, ignored = _accepted_kwargs(self.pipe.reconstruct, WINDOWS[task])
        self.ignored_windowing = ignored
        world = self.pipe.reconstruct(
            seq.rgb(), seed=self.seed, ensemble_size=self.ensemble, **self.steps, **kwargs
        )
        return {"depth": _numpy(world.depth), "c2w": _numpy(world.c2w)}

    def _trajectory(self, seq: EvalSequence) -> Any:
        if not self.action:
            return None
        if seq.c2w is None or seq.K is None:
            raise ValueError(f"{seq.name}: --action needs ground-truth poses and intrinsics, found none")
        from aether.modalities.disparity import clip_dmax
        from aether.pipeline import Trajectory

        depth = seq.depth()
        dmax = (
            1.0
            if depth is None
            else float(clip_dmax(torch.as_tensor(depth)[None], torch.as_tensor(depth > 0)[None])[0])
        )
        h, w = seq.rgb().shape[1:3]
        return Trajectory(np.linalg.inv(seq.c2w[0]) @ seq.c2w, seq.K, width=w, height=h, dmax=dmax)

    def predict(self, seq: EvalSequence) -> np.ndarray:
        rgb = seq.rgb()
        world = self.pipe.predict(
            rgb[0], trajectory=self._trajectory(seq), num_frames=len(rgb), seed=self.seed, **self.steps
        )
        return to_uint8_video(world.rgb)

    def plan(self, seq: EvalSequence) -> np.ndarray:
        """Planning as the paper evaluates it: no classifier-free guidance (guidance 1)."""
        rgb = seq.rgb()
        traj = self._trajectory(seq)
        world = self.pipe.plan(
            rgb[0],
            rgb[-1],
            trajectory=traj,
            num_frames=len(rgb),
            seed=self.seed,
            guidance_scale=1.0,
            **self.steps,
        )
        return to_uint8_video(world.rgb)


def read_prompts(path: str | Path) -> dict[str, str]:
    """Per-clip prompts: a JSON object {clip: prompt} or lines ``clip<TAB>prompt``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; expected prompts (JSON {{clip: prompt}} or 'clip<TAB>prompt' lines)"
        )
    text = path.read_text()
    if path.suffix == ".json":
        prompts = json.loads(text)
        if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
            raise ValueError(f"{path}: expected a JSON object mapping clip names to prompt strings")
        return prompts
    prompts = {}
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            name, sep, prompt = line.partition("\t")
            if not sep:
                raise ValueError(f"{path}: line {i}: expected 'clip<TAB>prompt'")
            prompts[name.strip()] = prompt.strip()
    return prompts


class CogVideoXBaseline:
    """The paper's prediction baseline: diffusers' CogVideoX image-to-video pipeline with per-clip
    prompts, the paper's negative prompt and guidance 6."""

    def __init__(
        self,
        model_dir: str | Path,
        prompts: str | Path | Mapping[str, str],
        device: str | None = None,
        num_inference_steps: int = 50,
        seed: int = 0,
        pipeline: Any = None,
    ) -> None:
        if pipeline is None:
            from diffusers import CogVideoXImageToVideoPipeline

            pipeline = CogVideoXImageToVideoPipeline.from_pretrained(str(model_dir))
            if device is not None:
                pipeline = pipeline.to(device)
        self.pipe = pipeline
        self.prompts = dict(prompts) if isinstance(prompts, Mapping) else read_prompts(prompts)
        self.steps, self.seed = num_inference_steps, seed

    def predict(self, seq: EvalSequence) -> np.ndarray:
        from PIL import Image

        if seq.name not in self.prompts:
            raise ValueError(f"prompts: expected a prompt for clip {seq.name!r}, found none")
        rgb = seq.rgb()
        out = self.pipe(
            image=Image.fromarray(rgb[0]),
            prompt=self.prompts[seq.name],
            negative_prompt=COGVIDEOX_NEGATIVE_PROMPT,
            guidance_scale=COGVIDEOX_GUIDANCE,
            num_frames=len(rgb),
            height=rgb.shape[1],
            width=rgb.shape[2],
            num_inference_steps=self.steps,
            generator=torch.Generator().manual_seed(self.seed),
            output_type="np",
        )
        return to_uint8_video(np.asarray(out.frames[0]))

    plan = predict


def _numpy(x: Any) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --------------------------------------------------------------------------- runners
def _result(
    benchmark: str, dataset: EvalDataset, per_seq: dict[str, Any], mean: dict[str, Any], **settings: Any
) -> dict[str, Any]:
    order = sorted(per_seq)
    return {
        "benchmark": benchmark,
        "dataset": dataset.name,
        "settings": settings,
        "per_sequence": {k: per_seq[k] for k in order},
        "mean": mean,
        "paper": PAPER_NUMBERS.get((benchmark, dataset.name), {}),
    }


def _sequences(dataset: EvalDataset, task: str) -> list[EvalSequence]:
    if task not in dataset.tasks:
        raise ValueError(f"{dataset.name}: expected a benchmark among {dataset.tasks}, received {task!r}")
    seqs = dataset.sequences(task)
    if not seqs:
        raise FileNotFoundError(f"{dataset.name}: no sequences found for {task}")
    return seqs


def run_video_depth(
    dataset: EvalDataset, source: Any, align: str = "scale", progress: bool = True
) -> dict[str, Any]:
    """Abs Rel and δ<1.25 per sequence and valid-pixel-weighted means over the dataset."""
    metric = VideoDepthMetric(align, dataset.max_depth, dataset.post_clip_max)
    per_seq = {}
    for seq in tqdm(
        split_for_rank(_sequences(dataset, "video-depth")), desc="video depth", disable=not progress
    ):
        gt = seq.depth()
        if gt is None:
            raise ValueError(f"{dataset.name}/{seq.name}: expected ground-truth depth, found none")
        metric.update(source.reconstruct(seq, "video-depth")["depth"], gt)
        per_seq[seq.name] = metric.sequence_stats[-1]
    per_seq = gather_dicts(per_seq)
    return _result(
        "video-depth", dataset, per_seq, metric.compute(), align=align,
        max_depth=dataset.max_depth, post_clip_max=dataset.post_clip_max, windows=WINDOWS["video-depth"],
        windows_not_applied=getattr(source, "ignored_windowing", []),
    )  # fmt: skip


def run_camera_pose(
    dataset: EvalDataset, source: Any, plot_dir: str | Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """ATE, RPE translation and rotation per sequence and their means; trajectory plots when
    ``plot_dir`` is given. Frames whose ground-truth pose is not finite are left out."""
    metric = CameraPoseMetric()
    per_seq = {}
    for seq in tqdm(
        split_for_rank(_sequences(dataset, "camera-pose")), desc="camera pose", disable=not progress
    ):
        if seq.c2w is None:
            raise ValueError(f"{dataset.name}/{seq.name}: expected ground-truth poses, found none")
        pred = source.reconstruct(seq, "camera-pose")["c2w"]
        if pred.shape != seq.c2w.shape:
            raise ValueError(
                f"{seq.name}: expected predicted poses of shape {seq.c2w.shape}, received {pred.shape}"
            )
        keep = np.isfinite(seq.c2w).all(axis=(1, 2))
        gt, pred = seq.c2w[keep], pred[keep]
        metric.update(pred, gt)
        per_seq[seq.name] = {**metric.sequence_stats[-1], "frames": int(keep.sum())}
        if plot_dir is not None:
            Path(plot_dir).mkdir(parents=True, exist_ok=True)
            aligned = sim3_align_trajectory(
                torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(gt, dtype=torch.float64)
            )
            plot_trajectories(
                Path(plot_dir) / f"trajectory_{dataset.name}_{seq.name}.png",
                {"ground truth": gt, "prediction (Sim(3)-aligned)": aligned.numpy()},
                title=seq.name,
            )
    per_seq = gather_dicts(per_seq)
    return _result(
        "camera-pose", dataset, per_seq, metric.compute(), windows=WINDOWS["camera-pose"],
        windows_not_applied=getattr(source, "ignored_windowing", []),
    )  # fmt: skip


def run_prediction(
    dataset: EvalDataset, source: Any, models: VBenchModels | None = None, progress: bool = True
) -> dict[str, Any]:
    """The six VBench dimensions and their weighted total over the predicted videos."""
    models = models or VBenchModels()
    videos = {}
    for seq in tqdm(
        split_for_rank(_sequences(dataset, "prediction")), desc="prediction", disable=not progress
    ):
        videos[seq.name] = (source.predict(seq), seq.fps)
    scores = vbench_scores(videos, models)
    per_seq = gather_dicts(scores["per_video"])
    dims = _vbench_means(per_seq, videos, scores)
    return _result("prediction", dataset, per_seq, dims, missing=scores["missing"])


def _vbench_means(per_seq: dict[str, Any], videos: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """Dataset-level VBench dimensions: this process's own when alone, otherwise recombined from
    the gathered per-video scores with VBench's weighting."""
    _, world = rank_and_world()
    if world == 1:
        return {**local["dimensions"], "total": local["total"]}
    # consistency dimensions are frame-weighted: weight each video by its T-1 frame pairs
    lengths = gather_dicts({k: len(v[0]) - 1 for k, v in videos.items()})
    dims = {}
    for d in DIMENSIONS:
        vals = [
            (v[d], lengths[k] if "consistency" in d else 1) for k, v in per_seq.items() if v[d] is not None
        ]
        dims[d] = sum(s * w for s, w in vals) / sum(w for _, w in vals) if vals else None
    return {**dims, "total": weighted_total(dims)}


def run_planning(
    dataset: EvalDataset,
    source: Any,
    lpips_model: torch.nn.Module | None = None,
    vbench_models: VBenchModels | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """PSNR, SSIM, MS-SSIM and LPIPS (missing without its weights) of planned videos against the
    ground-truth clips; a prediction of another size is resized (bilinear, antialiased) to it.
    With ``vbench_models`` the planned videos also get the six VBench dimensions and their total
    (the paper's visual path planning table)."""
    metric = VideoPixelMetric(lpips_model)
    per_seq, videos = {}, {}
    for seq in tqdm(split_for_rank(_sequences(dataset, "planning")), desc="planning", disable=not progress):
        gt = torch.from_numpy(seq.rgb()).permute(0, 3, 1, 2).float() / 255
        planned = source.plan(seq)
        pred = torch.from_numpy(planned).permute(0, 3, 1, 2).float() / 255
        if pred.shape[0] != gt.shape[0]:
            raise ValueError(f"{seq.name}: expected {gt.shape[0]} planned frames, received {pred.shape[0]}")
        if pred.shape[-2:] != gt.shape[-2:]:
            pred = F.interpolate(
                pred, size=gt.shape[-2:], mode="bilinear", antialias=True, align_corners=False
            )
        metric.update(pred, gt)
        per_seq[seq.name] = metric.sequence_stats[-1]
        if vbench_models is not None:
            videos[seq.name] = (planned, seq.fps)
    mean: dict[str, Any] = metric.compute()
    settings: dict[str, Any] = {}
    if vbench_models is not None:
        scores = vbench_scores(videos, vbench_models)
        for name, row in scores["per_video"].items():
            per_seq[name].update(row)
        mean.update(_vbench_means(gather_dicts(scores["per_video"]), videos, scores))
        settings["missing"] = scores["missing"]
    per_seq = gather_dicts(per_seq)
    return _result("planning", dataset, per_seq, mean, **settings)
