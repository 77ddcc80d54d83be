"""Benchmark runners: video depth, camera pose, prediction (VBench) and planning (pixel metrics).

A runner takes an :class:`~aether.evaluation.datasets.EvalDataset` and a prediction source
(saved predictions, the AETHER pipeline run with the published protocol or the library's own
windowing, or the CogVideoX image-to-video baseline), scores every sequence and returns one
result dict (per-sequence and mean metrics, the protocol and every setting that departs from it,
the paper's numbers, and on synthetic data the trivial baselines). Launched distributed, each rank
takes every world-size-th sequence and the results are gathered, so every rank returns the whole
result.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from aether.evaluation.baselines import frame_mean_depth, static_camera_metrics
from aether.evaluation.datasets import EvalDataset, EvalSequence
from aether.evaluation.depth_metrics import METRICS, VideoDepthMetric, check_alignment
from aether.evaluation.names import PROTOCOL_ALIGNMENTS
from aether.evaluation.pixel_metrics import VideoPixelMetric
from aether.evaluation.pose_metrics import CameraPoseMetric
from aether.evaluation.protocol import (
    PAPER_METRICS,
    PAPER_RUNS,
    SMOOTHING,
    check_protocol,
    run_depth,
    run_poses,
)
from aether.evaluation.report import paper_rows
from aether.evaluation.vbench import DIMENSIONS, VBenchModels, vbench_scores, weighted_total
from aether.geometry.alignment import align_trajectory_sim3
from aether.geometry.depth import fill_invalid_depth
from aether.visualize import plot_trajectories

# The library protocol's windowing, passed to the pipeline's reconstruct() (``--protocol library``).
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
class BenchmarkSource(Protocol):
    """What the runners ask of a prediction source (:class:`SavedPredictions`,
    :class:`PipelineSource`, :class:`CogVideoXBaseline`); a source raises for what it cannot make.

    Attributes:
        action: whether predictions follow the ground-truth trajectory.
        ignored_windowing: library windowing options the model's pipeline does not take.
        window_reports: per-sequence reports of the window merges (camera pose).
    """

    action: bool
    ignored_windowing: list[str]
    window_reports: dict[str, list[dict[str, Any]]]

    def run_settings(self, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the model-run settings used for ``task``, those departing from the paper's)."""
        ...

    def reconstruct(self, seq: EvalSequence, task: str) -> dict[str, np.ndarray]:
        """{"depth": (T,H,W)} for "video-depth", {"c2w": (T,4,4)} for "camera-pose"."""
        ...

    def predict(self, seq: EvalSequence) -> np.ndarray:
        """uint8 (T,H,W,3) predicted from the first frame."""
        ...

    def plan(self, seq: EvalSequence) -> np.ndarray:
        """uint8 (T,H,W,3) planned from the first to the last frame."""
        ...


class _Source:
    """The defaults of a :class:`BenchmarkSource` that runs no model of its own."""

    action: ClassVar[bool] = False
    ignored_windowing: ClassVar[list[str]] = []
    window_reports: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    def reconstruct(self, seq: EvalSequence, task: str) -> dict[str, np.ndarray]:
        raise ValueError(f"{type(self).__name__}: expected a source of reconstructions for {task}")


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


class SavedPredictions(_Source):
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
        raise FileNotFoundError(
            f"{self.dir}: no predictions for sequence {seq.name!r} (expected {path.name} or {seq.name}/)"
        )

    def run_settings(self, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Saved predictions: the model run is not made here (no departures to record)."""
        return {"source": f"saved predictions in {self.dir}"}, {}

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
    """Runs :class:`aether.pipeline.AetherPipeline` on each sequence.

    ``protocol="paper"`` (default) reproduces the published model runs
    (:mod:`aether.evaluation.protocol`: sampling policy "upstream", seeds 3407 / 42, its windows,
    merges, depth cap and camera smoothing); ``"library"`` runs ``reconstruct`` with the library's
    own windowing (``WINDOWS``), merging and policy. ``policy``, ``seed``, ``num_inference_steps``,
    ``ensemble`` and ``smoothing`` override single settings (recorded as departures).
    ``action=True`` passes the ground-truth trajectory (relative to frame 0) to predict/plan.
    ``task`` names a registered generating task (a plug-in's) run instead of prediction and planning:
    its colour inputs are cut from the sequence's frames, its other inputs are the sequence's arrays
    (e.g. "depth")."""

    def __init__(
        self,
        model_dir: str | Path,
        base: str | Path | None = None,
        device: str | None = None,
        action: bool = False,
        seed: int | None = None,
        num_inference_steps: int | None = None,
        ensemble: int = 1,
        protocol: str = "paper",
        policy: str | None = None,
        smoothing: str | None = None,
        task: str | None = None,
    ) -> None:
        from aether.pipeline import AetherPipeline

        self.protocol = check_protocol(protocol)
        if smoothing is not None and smoothing not in SMOOTHING:
            raise ValueError(f"smoothing: expected one of {', '.join(SMOOTHING)}; received {smoothing!r}")
        self.policy = policy or ("upstream" if protocol == "paper" else "default")
        kwargs = {} if base is None else {"base": str(base)}
        self.pipe = AetherPipeline.from_pretrained(str(model_dir), mode=self.policy, **kwargs)
        if device is not None and hasattr(self.pipe, "to"):
            self.pipe = self.pipe.to(device)
        self.action, self.seed = action, seed
        self.num_inference_steps = num_inference_steps
        self.steps = {} if num_inference_steps is None else {"num_inference_steps": num_inference_steps}
        self.ensemble, self.smoothing, self.task = ensemble, smoothing, task
        self.ignored_windowing: list[str] = []
        self.window_reports: dict[str, list[dict[str, Any]]] = {}

    def run_settings(self, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the model-run settings used for ``task``, those departing from the paper's)."""
        paper = PAPER_RUNS.get(task, {})
        overrides = {
            "policy": self.policy,
            "seed": self.seed,
            "steps": self.num_inference_steps,
            "ensemble": self.ensemble,
            "smoothing": self.smoothing if task == "camera-pose" else None,
        }
        if self.protocol == "library":
            used = {"windows": WINDOWS.get(task), "merge": "the library's (AetherPipeline.reconstruct)"}
            used |= {k: v for k, v in overrides.items() if v is not None}
            used.setdefault("seed", 0)
            return used, {"protocol": "library", **used}
        used = {**paper, **{k: v for k, v in overrides.items() if v is not None}}
        return used, {k: v for k, v in used.items() if paper.get(k) != v}

    def reconstruct(self, seq: EvalSequence, task: str) -> dict[str, np.ndarray]:
        if self.protocol == "paper":
            settings = self.run_settings(task)[0]
            if task == "video-depth":
                return {"depth": run_depth(self.pipe, seq.rgb(), settings)}
            c2w, reports = run_poses(self.pipe, seq.rgb(), settings)
            self.window_reports[seq.name] = reports
            return {"c2w": c2w}
        kwargs, ignored = _accepted_kwargs(self.pipe.reconstruct, WINDOWS[task])
        self.ignored_windowing = ignored
        world = self.pipe.reconstruct(
            seq.rgb(), seed=0 if self.seed is None else self.seed, ensemble_size=self.ensemble,
            **self.steps, **kwargs,
        )  # fmt: skip
        depth = _numpy(world.depth)
        if world.valid is not None:  # scored as validation scores it: invalid pixels at the far depth
            depth = fill_invalid_depth(torch.from_numpy(depth), torch.from_numpy(world.valid)).numpy()
        return {"depth": depth, "c2w": _numpy(world.c2w)}

    def trajectory(self, seq: EvalSequence) -> Any:
        """The sequence's trajectory relative to its first frame (None without ``action``)."""
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

    def generate(self, seq: EvalSequence, task: str, **options: Any) -> np.ndarray:
        """uint8 (T,H,W,3) of a generating task on ``seq``, given the inputs it requires."""
        from aether.tasks import TASKS, color_inputs

        colours = color_inputs(seq.rgb())
        inputs = {}
        for key in TASKS.get(task).required_inputs:
            value = colours[key] if key in colours else seq.entry(key)
            if value is None:
                raise ValueError(f"{seq.name}: {task} requires {key!r}, which the sequence does not hold")
            inputs[key] = value
        world = self.pipe.run(
            task, inputs, self.trajectory(seq), num_frames=len(seq.rgb()), seed=self.seed or 0,
            **self.steps, **options,
        )  # fmt: skip
        return to_uint8_video(world.rgb)

    def predict(self, seq: EvalSequence) -> np.ndarray:
        return self.generate(seq, self.task or "prediction")

    def plan(self, seq: EvalSequence) -> np.ndarray:
        """Planning as the paper evaluates it: no classifier-free guidance (guidance 1)."""
        return self.generate(seq, self.task or "planning", guidance_scale=1.0)


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


class CogVideoXBaseline(_Source):
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

    def run_settings(self, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The baseline's run (no AETHER model run, so nothing departs from the paper's)."""
        return {"source": "CogVideoX image-to-video", "steps": self.steps, "seed": self.seed}, {}

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
    benchmark: str,
    dataset: EvalDataset,
    per_seq: dict[str, Any],
    mean: dict[str, Any],
    variant: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    order = sorted(per_seq)
    return {
        "benchmark": benchmark,
        "dataset": dataset.name,
        "settings": settings,
        "per_sequence": {k: per_seq[k] for k in order},
        "mean": mean,
        "paper": paper_rows(benchmark, dataset.name, variant),
    }


def _protocol_settings(
    source: BenchmarkSource, task: str, dataset: EvalDataset, **metric: Any
) -> dict[str, Any]:
    """The protocol record of a result: the model run, the metric settings, the departures."""
    run, departures = source.run_settings(task)
    departures = dict(departures)
    for key, value in metric.items():
        if (
            key in PAPER_METRICS
            and value != PAPER_METRICS[key]
            and not (key == "align" and value in PROTOCOL_ALIGNMENTS)
        ):
            departures[key] = value
    if getattr(dataset, "only", None):
        departures["sequences"] = list(dataset.only)
    protocol = "library" if "protocol" in departures else "paper"
    return {"protocol": protocol, "model_run": run, **metric, "departures": departures}


def _sequences(dataset: EvalDataset, task: str) -> list[EvalSequence]:
    if task not in dataset.tasks:
        raise ValueError(f"{dataset.name}: expected a benchmark among {dataset.tasks}, received {task!r}")
    seqs = dataset.sequences(task)
    if not seqs:
        raise FileNotFoundError(f"{dataset.name}: no sequences found for {task}")
    return seqs


def run_video_depth(
    dataset: EvalDataset,
    source: BenchmarkSource,
    align: str = "scale",
    progress: bool = True,
    mask_edge: bool = False,
    picture_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The seven depth metrics per sequence and their valid-pixel-weighted dataset means, with the
    dataset's max_depth / post-clip; depth pictures per sequence when ``picture_dir`` is given; on
    synthetic data also the frame-mean-depth baseline."""
    check_alignment(align)
    metric = VideoDepthMetric(align, dataset.max_depth, dataset.post_clip_max, mask_edge)
    baseline = VideoDepthMetric(align, dataset.max_depth, dataset.post_clip_max, mask_edge)
    per_seq = {}
    for seq in tqdm(
        split_for_rank(_sequences(dataset, "video-depth")), desc="video depth", disable=not progress
    ):
        gt = seq.depth()
        if gt is None:
            raise ValueError(f"{dataset.name}/{seq.name}: expected ground-truth depth, found none")
        pred = source.reconstruct(seq, "video-depth")["depth"]
        metric.update(pred, gt, sequence=f"{dataset.name}/{seq.name}")
        per_seq[seq.name] = metric.sequence_stats[-1]
        if dataset.trivial_baselines:
            g = torch.as_tensor(gt)
            baseline.update(frame_mean_depth(g, (g > 0) & torch.isfinite(g)), gt, sequence=seq.name)
        if picture_dir is not None:
            from aether.evaluation.pictures import depth_pictures

            depth_pictures(
                Path(picture_dir) / f"depth_{dataset.name}_{seq.name}.png", seq.rgb(), gt, pred,
                metric.sequence_stats[-1], dataset.max_depth, dataset.post_clip_max,
            )  # fmt: skip
    per_seq = gather_dicts(per_seq)
    result = _result(
        "video-depth", dataset, per_seq, metric.compute(), align,
        **_protocol_settings(source, "video-depth", dataset, align=align, mask_edge=mask_edge),
        max_depth=dataset.max_depth, post_clip_max=dataset.post_clip_max,
        windows_not_applied=source.ignored_windowing,
    )  # fmt: skip
    if dataset.trivial_baselines:
        result["baselines"] = {
            "frame-mean depth": {k: v for k, v in baseline.compute().items() if k in METRICS}
        }
    return result


def run_camera_pose(
    dataset: EvalDataset, source: BenchmarkSource, plot_dir: str | Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """ATE, RPE translation and rotation per sequence and their means; trajectory plots when
    ``plot_dir`` is given. Frames whose ground-truth pose is not finite are left out."""
    metric = CameraPoseMetric()
    per_seq, static = {}, {}
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
        metric.update(pred, gt, sequence=f"{dataset.name}/{seq.name}")
        per_seq[seq.name] = {**metric.sequence_stats[-1], "frames": int(keep.sum())}
        if seq.name in source.window_reports:
            per_seq[seq.name]["window_smoothing"] = source.window_reports[seq.name]
        if dataset.trivial_baselines:
            static[seq.name] = static_camera_metrics(torch.as_tensor(gt))
        if plot_dir is not None:
            Path(plot_dir).mkdir(parents=True, exist_ok=True)
            aligned = align_trajectory_sim3(
                torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(gt, dtype=torch.float64)
            )
            plot_trajectories(
                Path(plot_dir) / f"trajectory_{dataset.name}_{seq.name}.png",
                {"ground truth": gt, "prediction (Sim(3)-aligned)": aligned.numpy()},
                title=seq.name,
            )
    per_seq = gather_dicts(per_seq)
    result = _result(
        "camera-pose", dataset, per_seq, metric.compute(),
        **_protocol_settings(source, "camera-pose", dataset),
        windows_not_applied=source.ignored_windowing,
    )  # fmt: skip
    static = gather_dicts(static)
    if static:
        result["baselines"] = {
            "static camera": {
                k: float(np.mean([v[k] for v in static.values()])) for k in ("ate", "rpe_trans", "rpe_rot")
            }
        }
    return result


def run_prediction(
    dataset: EvalDataset, source: BenchmarkSource, models: VBenchModels | None = None, progress: bool = True
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
    variant = "action" if source.action else "no action"
    run = source.run_settings("prediction")[0]
    return _result("prediction", dataset, per_seq, dims, variant, missing=scores["missing"], model_run=run)


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
    source: BenchmarkSource,
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
        metric.update(pred, gt, sequence=f"{dataset.name}/{seq.name}")
        per_seq[seq.name] = metric.sequence_stats[-1]
        if vbench_models is not None:
            videos[seq.name] = (planned, seq.fps)
    mean: dict[str, Any] = metric.compute()
    settings: dict[str, Any] = {"model_run": source.run_settings("planning")[0]}
    if vbench_models is not None:
        scores = vbench_scores(videos, vbench_models)
        for name, row in scores["per_video"].items():
            per_seq[name].update(row)
        mean.update(_vbench_means(gather_dicts(scores["per_video"]), videos, scores))
        settings["missing"] = scores["missing"]
    per_seq = gather_dicts(per_seq)
    return _result("planning", dataset, per_seq, mean, **settings)
