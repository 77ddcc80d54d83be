"""``aether run RECIPE``: data preparation, fit, evaluation of every task, report.

The recipe's ``run`` section drives what happens around the LightningCLI fit::

    run:
      name: tiny                      # outputs/<name>/
      output_dir: outputs
      threads: 2                      # torch CPU threads (optional)
      resume: true                    # continue from <out>/checkpoints/last.ckpt when present
      checkpoint_every: 100           # steps between checkpoints (when the recipe sets none)
      prepare:                        # optional: render synthetic shards when absent
        synth:
          - {out: data/tiny/train, clips: 96, seed: 0, frames: 41, height: 64, width: 96}
          - {out: data/tiny/val, clips: 8, seed: 100000, frames: 41, height: 64, width: 96}
      evaluate:
        clips: 8                      # held-out clips from the validation shards
        tasks: [reconstruction, prediction, planning]
        steps: {reconstruction: 4, prediction: 25, planning: 25}
        ensemble: 1                   # reconstruction samples averaged per clip
        action: true                  # prediction/planning follow the true trajectory
        pictures: 2                   # clips drawn in the report
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from aether.data.batch import ClipBatch
from aether.evaluation.names import direction_arrow
from aether.training.cli import apply_overrides, build_cli, check_recipe, load_recipe
from aether.training.options import canonical_hparams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Margin:
    """One learning margin a run must show: the model's ``metric`` on ``task`` against a reference.

    ``reference`` is ``"baseline:KEY"`` (a trivial predictor's score) or ``"model:KEY"`` (the same
    model sampled another way, e.g. with the mirrored trajectory). ``relation`` is "<=", "<" or ">"
    on the ratio model / reference against ``factor``, or "+" for model - reference >= ``factor``
    (a gap, e.g. in dB).
    """

    task: str
    metric: str
    relation: str
    factor: float
    reference: str
    name: str


def _generation_margins(task: str) -> list[Margin]:
    """What prediction and planning must show: better than copying the first frame sharp or blurred
    (best σ) and, with a memory condition, than the memory's render alone; ≥ 1 dB better with the
    true trajectory than with the mirrored one or none, and camera errors (recovered by the
    annotation pipeline) at most half those of the sampling without one."""
    margins = [Margin(task, k, ">", 1.0, f"baseline:{k}", "copy the first frame") for k in ("psnr", "ssim")]
    margins += [
        Margin(task, k, ">", 1.0, f"baseline:{k}_blurred", "blurred copy (best σ)") for k in ("psnr", "ssim")
    ]
    margins += [  # models with a memory condition: more than the memory's render (holes: the first frame)
        Margin(task, k, ">", 1.0, f"baseline:{k}_render", "memory render alone") for k in ("psnr", "ssim")
    ]
    margins += [
        Margin(task, "psnr", "+", 1.0, "model:psnr_mirrored", "mirrored trajectory"),
        Margin(task, "psnr", "+", 1.0, "model:psnr_without_camera", "no trajectory"),
    ]
    return margins + [
        Margin(task, k, "<=", 0.5, f"model:{k}_without_camera", "no trajectory")
        for k in ("rot_err", "trans_err")
    ]


MARGINS: tuple[Margin, ...] = (
    Margin("reconstruction", "abs_rel", "<=", 0.5, "baseline:abs_rel", "per-frame mean depth"),
    Margin("reconstruction", "ate", "<=", 0.5, "baseline:ate", "static camera"),
    Margin("reconstruction", "rpe_trans", "<", 1.0, "baseline:rpe_trans", "static camera"),
    Margin("reconstruction", "rpe_rot", "<", 1.0, "baseline:rpe_rot", "static camera"),
    *_generation_margins("prediction"),
    *_generation_margins("planning"),
)
_RELATIONS = {
    "<=": ("≤", float.__le__),
    "<": ("<", float.__lt__),
    ">": (">", float.__gt__),
    "+": ("≥ +", float.__ge__),
}
BASELINE_NAMES = {
    "abs_rel": "per-frame mean depth",
    "delta_1_25": "per-frame mean depth",
    "ate": "static camera",
    "rpe_trans": "static camera",
    "rpe_rot": "static camera",
    "psnr": "copy the first frame",
    "ssim": "copy the first frame",
    "psnr_blurred": "blurred copy of the first frame (best σ)",
    "ssim_blurred": "blurred copy of the first frame (best σ)",
    "psnr_mirrored": "copy the first frame",
    "ssim_mirrored": "copy the first frame",
    "psnr_without_camera": "copy the first frame",
    "ssim_without_camera": "copy the first frame",
    "psnr_without_memory": "copy the first frame",
    "ssim_without_memory": "copy the first frame",
    "psnr_render": "memory render alone, holes filled with the first frame",
    "ssim_render": "memory render alone, holes filled with the first frame",
    **{
        f"{k}{suffix}": "the true video (the recovery's own error)"
        for k in ("rot_err", "trans_err", "cammc")
        for suffix in ("", "_without_camera")
    },
}

# settings that may change between a run and its resumption (they do not change what is learnt)
RESUMABLE_CHANGES = {"num_workers", "validation", "max_consecutive_skips", "read_timeout", "sampling_steps"}


def prepare_data(prepare: dict[str, Any]) -> list[str]:
    """Render the synthetic shard sets listed under ``prepare.synth`` whose folder has no shards."""
    from aether.data import synthesize_shards

    written: list[str] = []
    for spec in prepare.get("synth", []) or []:
        spec = dict(spec)
        out = Path(spec.pop("out"))
        if out.is_dir() and any(out.glob("*.tar")):
            logger.info("shards present in %s: not regenerating", out)
            continue
        clips = int(spec.pop("clips"))
        print(f"rendering {clips} synthetic clips into {out}", flush=True)
        written += synthesize_shards(out, clips, **spec)
    return written


def evaluate_module(module: Any, datamodule: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Evaluate ``module`` on the first ``config['clips']`` validation clips.

    Returns ``{"tasks": {task: {"metrics", "baseline"}}, "clips": n, "batches": [...],
    "settings": {"steps", "ensemble"}}``, metrics averaged over clips; ``batches`` keeps
    (batch, results) for pictures.
    """
    from aether.training.validation import TASKS, evaluate_batch

    tasks = list(config.get("tasks", TASKS))
    max_clips = int(config.get("clips", 8))
    module = module.cpu().eval() if not torch.cuda.is_available() else module.eval()
    rows: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {t: [] for t in tasks}
    kept: list[tuple[ClipBatch, dict[str, Any]]] = []
    seen = 0
    loader = datamodule.val_dataloader()
    for batch in loader:
        take = min(batch["video"].shape[0], max_clips - seen)
        batch = {k: (v[:take] if isinstance(v, torch.Tensor | list) else v) for k, v in batch.items()}
        batch = {k: (v.to(module.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        for i in range(take):
            one = {k: (v[i : i + 1] if isinstance(v, torch.Tensor | list) else v) for k, v in batch.items()}
            res = evaluate_batch(
                module,
                one,
                tasks=tasks,
                steps=config.get("steps") or module.spec.sampling_steps,
                action=bool(config.get("action", True)),
                seed=int(config.get("seed", 0)),
                ensemble=int(config.get("ensemble", 1)),
                guidance=float(config.get("guidance", 1.0)),
                smooth=str(config.get("smooth", "none")),
                ablate_camera=bool(config.get("ablate_camera", False)),
                camera_control=bool(config.get("camera_control", False)),
                image_memory=config.get("image_memory"),
            )
            for task, r in res.items():
                rows[task].append((r.metrics, r.baseline))
            if len(kept) < int(config.get("pictures", 2)):
                kept.append((cast(ClipBatch, one), res))
            seen += 1
            print(f"evaluated clip {seen}/{max_clips}", flush=True)
        if seen >= max_clips:
            break
    if seen == 0:
        raise ValueError("no validation clips to evaluate: check data.val_urls")
    summary = {
        task: {
            "metrics": _mean([m for m, _ in pairs]),
            "baseline": _mean([b for _, b in pairs]),
        }
        for task, pairs in rows.items()
    }
    settings = {
        "steps": dict(config.get("steps") or module.spec.sampling_steps or {}),
        "ensemble": int(config.get("ensemble", 1)),
        "guidance": float(config.get("guidance", 1.0)),
        "smooth": str(config.get("smooth", "none")),
        "ablate_camera": bool(config.get("ablate_camera", False)),
        "camera_control": bool(config.get("camera_control", False)),
        "image_memory": config.get("image_memory"),
    }
    return {"tasks": summary, "clips": seen, "batches": kept, "settings": settings}


def _mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def margin_checks(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The learning-margin checks (:data:`MARGINS`).

    Each check: task, metric, reference (what it is compared with), model, baseline (the
    reference's value), ratio (model / reference, or the gap for "+"), relation, required (the
    factor) and passed. Metrics a run does not produce (e.g. depth without a disparity target) or
    that are undefined on its clips (NaN, or a zero baseline of a ratio) are skipped."""
    checks = []
    for margin in MARGINS:
        kind, key = margin.reference.split(":")
        scores = summary.get(margin.task)
        if scores is None or margin.metric not in scores["metrics"]:
            continue
        model = scores["metrics"][margin.metric]
        base = scores["baseline" if kind == "baseline" else "metrics"].get(key, math.nan)
        gap = margin.relation == "+"
        if not (math.isfinite(model) and math.isfinite(base) and (gap or base > 0)):
            continue  # undefined here, e.g. ATE on clips whose true camera does not move
        ratio = model - base if gap else model / base
        checks.append(
            {
                "task": margin.task,
                "metric": margin.metric,
                "reference": margin.name,
                "model": model,
                "baseline": base,
                "ratio": ratio,
                "relation": margin.relation,
                "required": margin.factor,
                "passed": bool(_RELATIONS[margin.relation][1](float(ratio), float(margin.factor))),
            }
        )
    return checks


def loss_curve(metrics_csv: Path, path: Path) -> Path | None:
    """Plot train/loss against step from a CSVLogger metrics file."""
    import csv

    if not metrics_csv.is_file():
        return None
    steps, losses = [], []
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            if row.get("train/loss"):
                steps.append(int(row["step"]))
                losses.append(float(row["train/loss"]))
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, losses, lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fmt(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.4g}"


def _report_header(name: str, recipe_path: str, info: dict[str, Any], clips: int) -> list[str]:
    """The report's title and its first paragraph: recipe, optimizer steps, fit time, training
    throughput, final training loss and the number of held-out clips evaluated."""
    trained = (
        f"{info['steps']} optimizer steps in {info['fit_seconds']:.0f} s "
        f"({info['samples_per_second']:.2f} training clips/s); final training loss "
        f"{_fmt(info.get('final_loss', math.nan))}"
        if info.get("trained", True)
        else f"the checkpoint of step {info['steps']}, trained by an earlier run (evaluated only)"
    )
    return [
        f"# {name}: training and evaluation report",
        "",
        f"Recipe `{recipe_path}`; {trained}. Evaluated on {clips} held-out "
        "synthetic clips (validation shards, never trained on).",
        "",
    ]


def _margin_lines(checks: list[dict[str, Any]]) -> list[str]:
    """The "Learning margins" section: one table row per check of :func:`margin_checks`, then the
    missed ones named (or a line saying every margin is met); no lines when there is no check."""
    if not checks:
        return []
    lines = [
        "## Learning margins",
        "",
        "| check | model | reference | model / reference (or gap) | required | result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in checks:
        required = f"{_RELATIONS[c['relation']][0]} {c['required']:g}"
        result = "met" if c["passed"] else "MISSED"
        lines.append(
            f"| {c['task']} {c['metric']} vs {c['reference']} | {_fmt(c['model'])} | "
            f"{_fmt(c['baseline'])} | {_fmt(c['ratio'])} | {required} | {result} |"
        )
    missed = [c for c in checks if not c["passed"]]
    lines.append("")
    if not missed:
        return [*lines, "Every margin is met.", ""]
    return [
        *lines,
        "Missed: "
        + ", ".join(f"{c['task']} {c['metric']} vs {c['reference']}" for c in missed)
        + ". This run does not "
        "show the required margin there; the metrics and pictures below show how far it got.",
        "",
    ]


def _metric_lines(tasks: dict[str, Any]) -> list[str]:
    """The "Metrics" table: per task and metric, the model's score (with the direction that is
    better), the baseline's and what the baseline is."""
    lines = [
        "## Metrics",
        "",
        "| task | metric | model | baseline | baseline kind |",
        "| --- | --- | --- | --- | --- |",
    ]
    for task, res in tasks.items():
        for key, value in res["metrics"].items():
            baseline = _fmt(res["baseline"].get(key, math.nan))
            lines.append(
                f"| {task} | {key} {direction_arrow(key)} | {_fmt(value)} | {baseline} | "
                f"{BASELINE_NAMES.get(key, '')} |"
            )
    return lines


def _has_metric(tasks: dict[str, Any], suffix: str) -> bool:
    """Whether any task scored a metric whose name ends with ``suffix``."""
    return any(k.endswith(suffix) for r in tasks.values() for k in r["metrics"])


def _method_lines(tasks: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The paragraph under the metrics table saying how they were measured: alignment, camera
    smoothing, guidance and, when scored, what the ``_without_camera`` and ``_without_memory``
    samplings are (blank lines around it)."""
    guidance = float(settings.get("guidance", 1.0))
    smooth = str(settings.get("smooth", "none"))
    paragraph = (
        "Depth: Abs Rel and δ<1.25 after one scale per sequence. Cameras: ATE / RPE after Sim(3) "
        "alignment (the static camera's closed-form optimum as its baseline; ATE and RPE translation "
        "over the clips whose camera moves, for both)"
        + ("" if smooth == "none" else f", the decoded cameras smoothed first ({smooth})")
        + ". Prediction and planning are conditioned on the true camera trajectory, "
        + ("without classifier-free guidance" if guidance == 1.0 else f"with guidance scale {guidance:g}")
        + "; PSNR/SSIM over the frames that were not given"
        + (
            "; `_without_camera`: the same sampling (same seed) given no camera trajectory, so a model "
            "that follows the camera scores higher with it than without."
            if _has_metric(tasks, "_without_camera")
            else "."
        )
    )
    if _has_metric(tasks, "_without_memory"):
        paragraph += (
            " The model has a memory condition: each sampling given a trajectory is also given the first "
            "frame lifted with the model's own depth of it (a first pass) and rendered along that "
            "trajectory; `_without_memory`: the same sampling without it; baseline `_render`: that "
            "render alone, its holes filled with the first frame."
        )
    return ["", paragraph, ""]


def _sampling_lines(settings: dict[str, Any]) -> list[str]:
    """The denoising steps per task and the reconstruction ensemble size, when the evaluation set
    either (no lines otherwise)."""
    steps = settings.get("steps") or {}
    if not (steps or settings.get("ensemble", 1) > 1):
        return []
    sampled = ", ".join(f"{task} {n}" for task, n in steps.items()) or "task defaults"
    return [
        f"Denoising steps: {sampled}; reconstruction averages {settings.get('ensemble', 1)} "
        "sample(s) per clip (test-time ensemble).",
        "",
    ]


def _picture_lines(
    out: Path, info: dict[str, Any], batches: Sequence[tuple[ClipBatch, dict[str, Any]]]
) -> list[str]:
    """The "Pictures" section: the training loss curve (``out/loss.png``, when ``info`` names a
    metrics CSV with losses) and, per kept clip, its tasks' pictures drawn under ``out/pictures``
    (clip 0 of each batch: video (B,T,3,H,W) in [-1,1])."""
    from aether.training.pictures import task_pictures

    lines = ["## Pictures", ""]
    curve = (
        loss_curve(Path(info.get("metrics_csv", "")), out / "loss.png") if info.get("metrics_csv") else None
    )
    if curve is not None:
        lines += [f"![training loss]({curve.relative_to(out)})", ""]
    for n, (batch, results) in enumerate(batches):
        lines += [f"### Clip `{batch['key'][0] if 'key' in batch else n}`", ""]
        for task, res in results.items():
            for path in task_pictures(out / "pictures", task, res, batch, 0, prefix=f"clip{n}"):
                lines += [f"![{task} {path.stem}]({path.relative_to(out)})", ""]
    return lines


def _write_metrics(
    out: Path,
    recipe_path: str,
    info: dict[str, Any],
    evaluation: dict[str, Any],
    checks: list[dict[str, Any]],
) -> None:
    """``out/metrics.json``: the recipe, training info, clip count, evaluation settings, per-task
    metrics and baselines, the margin checks and the following numbers per view."""
    payload = {
        "recipe": recipe_path,
        "training": info,
        "clips": evaluation["clips"],
        "settings": evaluation.get("settings", {}),
        "tasks": evaluation["tasks"],
        "margins": checks,
        "following": (evaluation.get("following") or {}).get("views", {}),
    }
    (out / "metrics.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")


def write_report(
    out: Path, name: str, recipe_path: str, info: dict[str, Any], evaluation: dict[str, Any]
) -> Path:
    """``out/report.md`` (+ ``metrics.json``, pictures under ``out/pictures``)."""
    lines = _report_header(name, recipe_path, info, evaluation["clips"])
    checks = margin_checks(evaluation["tasks"])
    lines += _margin_lines(checks)
    lines += _metric_lines(evaluation["tasks"])
    settings = evaluation.get("settings") or {}
    lines += _method_lines(evaluation["tasks"], settings)
    lines += _sampling_lines(settings)
    if "following" in evaluation:
        lines += evaluation["following"]["lines"]
    lines += _picture_lines(out, info, evaluation["batches"])
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _write_metrics(out, recipe_path, info, evaluation, checks)
    return report


def check_same_settings(ckpt: str, saved: dict[str, Any], module: Any, data: Any) -> None:
    """ValueError when the checkpoint was trained with other model or data settings than the
    recipe now asks for (resuming it would continue, or evaluate, a different run)."""
    differ = []
    for section, key, obj in (
        ("model", "hyper_parameters", module),
        ("data", "datamodule_hyper_parameters", data),
    ):
        old, new = saved.get(key), getattr(obj, "hparams", None)
        if old is None or new is None:
            continue
        old, new = dict(old), dict(new)
        if section == "model":  # options saved as some of their keys (older runs) equal them in full
            old, new = canonical_hparams(old), canonical_hparams(new)
        keys = sorted((set(old) | set(new)) - RESUMABLE_CHANGES)
        differ += [f"{section}.{k}" for k in keys if old.get(k) != new.get(k)]
    if differ:
        raise ValueError(
            f"{ckpt} was trained with other settings ({', '.join(differ)} differ from the recipe): "
            "choose another --name, or delete that run's folder to start afresh"
        )


def run_recipe(recipe_path: str | Path, overrides: Sequence[str] = (), name: str | None = None) -> Path:
    """Run a whole recipe; returns the report's path."""
    from aether.hub import require_local
    from aether.training.checkpoints import read_checkpoint, unsharded_copy
    from aether.training.export import export_module, load_module
    from aether.training.lora import merge_lora

    recipe = apply_overrides(load_recipe(recipe_path), overrides)
    check_recipe(recipe, recipe_path)
    run = dict(recipe.pop("run", None) or {})
    name = name or run.get("name") or Path(recipe_path).stem
    out = Path(run.get("output_dir", "outputs")) / name
    transformer = (recipe.get("model") or {}).get("transformer")
    if isinstance(transformer, dict) and transformer.get("pretrained"):  # before anything is created
        require_local(transformer["pretrained"], "model.transformer.pretrained")
    out.mkdir(parents=True, exist_ok=True)
    if run.get("threads"):
        torch.set_num_threads(int(run["threads"]))
    prepare_data(run.get("prepare") or {})
    trainer_cfg = recipe.setdefault("trainer", {})
    trainer_cfg.setdefault("default_root_dir", str(out))
    if trainer_cfg.get("logger") in (None, True):
        trainer_cfg["logger"] = {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(out), "name": "logs"},
        }
    callbacks = list(trainer_cfg.get("callbacks") or [])
    for c in callbacks:  # checkpoints go where resumption looks for them
        if isinstance(c, dict) and "ModelCheckpoint" in str(c.get("class_path", "")):
            c.setdefault("init_args", {}).setdefault("dirpath", str(out / "checkpoints"))
    if not any("ModelCheckpoint" in str(c.get("class_path", "")) for c in callbacks if isinstance(c, dict)):
        callbacks.append(
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {
                    "dirpath": str(out / "checkpoints"),
                    "save_last": True,
                    "save_top_k": 0,
                    "every_n_train_steps": int(run.get("checkpoint_every", 100)),
                },
            }
        )
    trainer_cfg["callbacks"] = callbacks
    cli = build_cli(recipe)
    trainer, module, data = cli.trainer, cli.model, cli.datamodule
    last = out / "checkpoints" / "last.ckpt"  # a file, or a folder of shards (FSDP2Strategy)
    ckpt = str(last) if run.get("resume", True) and last.exists() else None
    start_step = 0
    if ckpt:
        print(f"resuming from {ckpt}", flush=True)
        saved = read_checkpoint(ckpt)
        check_same_settings(ckpt, saved, module, data)
        start_step = int(saved.get("global_step", 0))
    t0 = time.perf_counter()
    if ckpt and 0 < trainer.max_steps <= start_step:
        print(
            f"the checkpoint is at step {start_step} >= max_steps: evaluating it without training", flush=True
        )
        module = load_module(ckpt)
        trainer.fit_loop.epoch_loop._batches_that_stepped = start_step
    else:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    fit_seconds = time.perf_counter() - t0
    steps = max(int(trainer.global_step), start_step)
    batch = int(getattr(data, "batch_size", 1))
    trained = max(steps - start_step, 0)
    info = {
        "steps": steps,
        "fit_seconds": fit_seconds,
        "samples_per_second": trained * batch * trainer.world_size / max(fit_seconds, 1e-9),
        "final_loss": float(trainer.callback_metrics.get("train/loss", math.nan)),
        "trained": trained > 0,
    }
    for lg in trainer.loggers:
        csv_path = Path(getattr(lg, "log_dir", "") or "") / "metrics.csv"
        if csv_path.is_file():
            info["metrics_csv"] = str(csv_path)
    module = unsharded_copy(module)  # gathers the shards (every rank takes part)
    if trainer.global_rank != 0:
        return out / "report.md"
    merge_lora(module.transformer)
    export_module(module, out / "model")
    print(f"exported the model to {out / 'model'}", flush=True)
    evaluation = evaluate_module(module, data, run.get("evaluate") or {})
    following = (run.get("evaluate") or {}).get("following")
    if following:
        evaluation["following"] = evaluate_following(module, data, following, out)
    return write_report(out, name, str(recipe_path), info, evaluation)


def evaluate_following(module: Any, data: Any, config: dict[str, Any], out: Path) -> dict[str, Any]:
    """``run.evaluate.following``: held-out views predicted under a trajectory and its mirror image
    (:mod:`aether.training.following`) at the data's size, its first frame count and ``fps``.

    config: ``seeds`` (rendered views, never trained on), ``trajectories`` (cycled over the seeds),
    ``steps`` (denoising steps), ``fps`` (default 12).
    """
    from aether.training.following import following_report

    clip = {
        "num_frames": int(list(data.hparams.get("frames") or [17])[0]),
        "height": int(data.hparams["height"]),
        "width": int(data.hparams["width"]),
        "fps": float(config.get("fps", 12.0)),
    }
    module = module.cpu().eval() if not torch.cuda.is_available() else module.eval()
    lines, numbers = following_report(
        module,
        out,
        seeds=[int(s) for s in config["seeds"]],
        trajectories=list(config.get("trajectories", ["turn", "strafe"])),
        steps=int(config.get("steps", 2)),
        clip=clip,
    )
    return {"lines": lines, "views": numbers}
