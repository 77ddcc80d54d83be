"""``aether app``: a Gradio web app over one loaded pipeline: reconstruct a video, predict a video from
an image (with a trajectory file or a preset camera motion), plan between two images, and drive a world
from an image one camera step at a time (buttons or keys).

Each run shows its progress and returns the colour|depth video, a 3D view of the point cloud with the
cameras (GLB), the camera-path plot and a zip of everything ``World4D.save`` wrote. A problem with an
upload is shown as a message in the page; the server keeps serving.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aether.apps.drive import KEYS, MOVES, STEP_LENGTH, TURN_DEGREES, drive_export, drive_step
from aether.apps.examples import write_examples
from aether.apps.jobs import FRAME_CHOICES, AppResult, AppRunner, frame_count, read_upload_image
from aether.pipeline.presets import PRESETS

logger = logging.getLogger(__name__)

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)
PANEL_HEIGHT = 420
"""Height in CSS pixels of each result panel (video, 3D view, camera path), one above the other."""
INTRO = """# AETHER: 4D reconstruction, prediction and planning
Model: `{model}` ({size}). **Reconstruct** turns a video into depth, cameras and a point cloud;
**Predict** imagines the video that follows an image (optionally along a camera path); **Plan** finds
the video from an observation to a goal image; **Drive** steps the camera through a world grown from
an image. Each run returns the colour | depth video, a 3D view (points and cameras; drag to turn), the
camera path and a zip of all the files."""
DRIVE_KEYS_JS = """
() => {
  if (window.aetherDriveKeys) return;
  window.aetherDriveKeys = true;
  const keys = %s;
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable;
    if (typing) return;
    const controls = document.getElementById("drive-controls");
    if (!controls || controls.offsetParent === null) return;  // only while the Drive tab shows
    const move = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    const button = move && document.getElementById("drive-" + move);
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  });
}
"""
"""Page script: the Drive tab's keys click its step buttons (not while typing in a field)."""
ARROWS = {"↑": "ArrowUp", "↓": "ArrowDown", "←": "ArrowLeft", "→": "ArrowRight"}


def _drive_keys_js() -> str:
    import json

    keys = {
        ARROWS.get(key, key.lower()): move.replace(" ", "-") for move, names in KEYS.items() for key in names
    }
    return DRIVE_KEYS_JS % json.dumps(keys)


def _outputs(result: AppResult) -> tuple:
    """A task's result as its panel shows it: video, scene, plot and archive paths, then the summary."""
    return str(result.video), str(result.scene), str(result.plot), str(result.archive), result.summary


def _checked(work: Callable[[], Any]) -> Any:
    """``work()``, its problems shown as a message in the page."""
    import gradio as gr

    try:
        return work()
    except USER_ERRORS as err:
        raise gr.Error(str(err), print_exception=False) from None
    except Exception as err:  # never a stack trace in the page; the server log keeps it
        logger.exception("run failed")
        raise gr.Error(
            f"the run failed ({type(err).__name__}: {err}); the server log has the details"
        ) from None


def _guarded(work: Callable[[], AppResult]) -> tuple:
    """The outputs of ``work()`` (:func:`_outputs`), its problems shown as a message in the page."""
    return _checked(lambda: _outputs(work()))


def _options(trajectory: Any, preset: Any, frames: Any, steps: Any, seed: Any) -> dict:
    """The keyword arguments of ``AppRunner.predict`` and ``AppRunner.plan`` from the form's values."""
    numbers = {"num_frames": frame_count(frames), "steps": int(steps), "seed": int(seed)}
    return {"trajectory": trajectory, "preset": preset, **numbers}


def _image_input(label: str) -> Any:
    """An image upload (checked by us, not by Gradio's image decoder) with a preview."""
    import gradio as gr

    def preview(path):
        if not path:
            return None
        try:
            read_upload_image(path)
        except USER_ERRORS as err:
            raise gr.Error(str(err), print_exception=False) from None
        return path

    upload = gr.File(label=label, file_types=["image"], type="filepath", height=90)
    shown = gr.Image(label=f"{label}: preview", interactive=False, height=180)
    upload.change(preview, upload, shown, api_visibility="private")
    return upload


def _result_panel(task: str) -> list:
    """The result column of a task's tab; returns its video, scene, plot, archive and summary."""
    import gradio as gr

    with gr.Column(elem_id=f"{task}-result"):
        summary = gr.Markdown(elem_id=f"{task}-summary")
        video = gr.Video(
            label="colour | depth (colour bar: depth in scene units)", elem_id=f"{task}-result-video",
            autoplay=True, loop=True, height=PANEL_HEIGHT,
        )  # fmt: skip
        scene = gr.Model3D(
            label="3D: points (1st-99th depth percentile), cameras (first red); drag: turn, scroll: zoom",
            elem_id=f"{task}-scene", height=PANEL_HEIGHT, zoom_speed=0.5,
        )  # fmt: skip
        plot = gr.Image(
            label="camera path (legend below the views)", type="filepath", elem_id=f"{task}-plot",
            height=PANEL_HEIGHT,
        )  # fmt: skip
        archive = gr.File(label="all files (zip)", elem_id=f"{task}-archive")
    return [video, scene, plot, archive, summary]


def _settings(default_steps: str) -> tuple[Any, Any]:
    """The denoising steps (0: the model spec's ``sampling_steps``, else the task's ``default_steps``)
    and seed fields."""
    import gradio as gr

    steps = gr.Number(
        value=0,
        precision=0,
        minimum=0,
        label=f"denoising steps (0: the model's sampling_steps, else the task's {default_steps})",
    )
    seed = gr.Number(value=0, precision=0, label="seed")
    return steps, seed


def _action_inputs(preset: str) -> list:
    """The camera path file, the preset motion, the frame count, the steps and the seed."""
    import gradio as gr

    trajectory = gr.File(label="camera path (optional: .json, raymap .npy, TUM .txt)")
    motion = gr.Dropdown(list(PRESETS), value=preset, label="or a preset camera motion")
    # string choices, as Gradio's API schema offers them; the count is checked by frame_count
    frames = gr.Dropdown(
        [str(n) for n in FRAME_CHOICES], value="17", label="frames (without a path file)",
        allow_custom_value=True,
    )  # fmt: skip
    return [trajectory, motion, frames, *_settings("50")]


def _reconstruct_tab(runner: AppRunner, examples: dict[str, Any]) -> None:
    """The Reconstruct tab: a video, steps and seed in; API name ``/reconstruct``."""
    import gradio as gr

    def reconstruct(video, steps, seed, progress=gr.Progress(track_tqdm=True)):
        progress(0.0, desc="reconstructing")
        return _guarded(lambda: runner.reconstruct(video, steps=int(steps), seed=int(seed)))

    with gr.Tab("Reconstruct", id="reconstruct"):
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(label="video", sources=["upload"], elem_id="reconstruct-video")
                steps, seed = _settings("4")
                run = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-run")
                gr.Examples([[str(examples["video"])]], inputs=[video], label="example")
            with gr.Column(scale=3):
                panel = _result_panel("reconstruct")
        run.click(reconstruct, [video, steps, seed], panel, api_name="reconstruct")


def _predict_tab(runner: AppRunner, examples: dict[str, Any]) -> None:
    """The Predict tab: an image and a camera path or preset motion in; API name ``/predict``."""
    import gradio as gr

    def predict(image, trajectory, preset, frames, steps, seed, progress=gr.Progress(track_tqdm=True)):
        progress(0.0, desc="predicting")
        return _guarded(lambda: runner.predict(image, **_options(trajectory, preset, frames, steps, seed)))

    with gr.Tab("Predict", id="predict"):
        with gr.Row():
            with gr.Column(scale=2):
                image = _image_input("image")
                action = _action_inputs("forward")
                run = gr.Button("Predict", variant="primary")
                gr.Examples([[str(examples["observation"])]], inputs=[image], label="example")
            with gr.Column(scale=3):
                panel = _result_panel("predict")
        run.click(predict, [image, *action], panel, api_name="predict")


def _plan_tab(runner: AppRunner, examples: dict[str, Any]) -> None:
    """The Plan tab: an observation and a goal image (and optionally a camera path) in; API name
    ``/plan``."""
    import gradio as gr

    def plan(
        observation, goal, trajectory, preset, frames, steps, seed, progress=gr.Progress(track_tqdm=True)
    ):
        progress(0.0, desc="planning")
        settings = _options(trajectory, preset, frames, steps, seed)
        return _guarded(lambda: runner.plan(observation, goal, **settings))

    with gr.Tab("Plan", id="plan"):
        with gr.Row():
            with gr.Column(scale=2):
                with gr.Row():
                    with gr.Column():
                        observation = _image_input("observation")
                    with gr.Column():
                        goal = _image_input("goal")
                action = _action_inputs("none")
                run = gr.Button("Plan", variant="primary")
                gr.Examples(
                    [[str(examples["observation"]), str(examples["goal"])]],
                    inputs=[observation, goal],
                    label="example",
                )
            with gr.Column(scale=3):
                panel = _result_panel("plan")
        run.click(plan, [observation, goal, *action], panel, api_name="plan")


@dataclass(frozen=True)
class _DriveControls:
    """The components of the Drive tab's control column (``buttons``: one per camera move)."""

    start: Any
    step: Any
    angle: Any
    steps: Any
    seed: Any
    buttons: dict[str, Any]
    restart: Any
    export: Any
    archive: Any
    rrd: Any


def _drive_buttons() -> dict[str, Any]:
    """One button per camera move, in three rows, each labelled with its keys; by move."""
    import gradio as gr

    buttons = {}
    for row in (("turn left", "forward", "turn right"), ("left", "back", "right"), ("up", "down")):
        with gr.Row():
            for move in row:
                label = f"{move} ({' / '.join(KEYS[move])})"
                buttons[move] = gr.Button(label, elem_id=f"drive-{move.replace(' ', '-')}")
    return buttons


def _drive_controls(examples: dict[str, Any]) -> _DriveControls:
    """The Drive tab's control column: start image, step length, turn angle, steps, seed, move
    buttons, start over, export and the exported files."""
    import gradio as gr

    start = _image_input("start image")
    gr.Examples([[str(examples["observation"])]], inputs=[start], label="example")
    with gr.Row():
        step = gr.Number(value=STEP_LENGTH, minimum=0, label="step length (scene units: 1 = nearest point)")
        angle = gr.Number(value=TURN_DEGREES, label="turn angle (degrees)")
    steps, seed = _settings("50")
    keys = ", ".join(f"{move}: {' / '.join(names)}" for move, names in KEYS.items())
    gr.Markdown(
        "Each step generates the next frames from the world so far (the first one a whole "
        f"window from the image). Keys (outside a text field): {keys}."
    )
    buttons = _drive_buttons()
    with gr.Row():
        restart = gr.Button("start over", variant="stop")
        export = gr.Button("export (.rrd + zip)", elem_id="drive-export")
    archive = gr.File(label="all files (zip)", elem_id="drive-archive")
    rrd = gr.File(label="rerun recording (.rrd)", elem_id="drive-rrd")
    return _DriveControls(start, step, angle, steps, seed, buttons, restart, export, archive, rrd)


def _drive_results() -> list:
    """The Drive tab's result column; returns its video, scene, plot, latency and summary."""
    import gradio as gr

    summary = gr.Markdown(elem_id="drive-summary")
    latency = gr.Number(label="last step latency (s)", interactive=False, elem_id="drive-latency")
    video = gr.Video(
        label="the world so far: colour | depth", elem_id="drive-result-video", autoplay=True,
        loop=True, height=PANEL_HEIGHT,
    )  # fmt: skip
    scene = gr.Model3D(
        label="3D: the growing point cloud and the cameras (first red)",
        elem_id="drive-scene", height=PANEL_HEIGHT, zoom_speed=0.5,
    )  # fmt: skip
    plot = gr.Image(
        label="camera path: requested (your steps) and generated", type="filepath",
        elem_id="drive-plot", height=PANEL_HEIGHT,
    )  # fmt: skip
    return [video, scene, plot, latency, summary]


def _wire_drive(runner: AppRunner, session: Any, controls: _DriveControls, results: list) -> None:
    """The Drive tab's events: a step (API name ``/drive``, and one per move button), the export
    (``/drive_export``), start over, and a new start image forgetting the world so far."""
    import gradio as gr

    def drive(image, move, step, angle, steps, seed, session, progress=gr.Progress(track_tqdm=True)):
        progress(0.0, desc=f"driving: {move}")
        session, view = _checked(
            lambda: drive_step(
                runner,
                session,
                image,
                move,
                step=float(step),
                angle=float(angle),
                steps=int(steps),
                seed=int(seed),
            )
        )
        return str(view.video), str(view.scene), str(view.plot), round(view.seconds, 3), view.summary, session

    def export_drive(session):
        archive, rrd = _checked(lambda: drive_export(runner, session))
        return str(archive), None if rrd is None else str(rrd)

    shown = [*results, session]
    settings_in = [controls.step, controls.angle, controls.steps, controls.seed, session]
    move = gr.Dropdown(list(MOVES), value="forward", label="camera step", visible=False)
    api_step = gr.Button("step", visible=False)
    api_step.click(drive, [controls.start, move, *settings_in], shown, api_name="drive")
    for name, button in controls.buttons.items():
        named = gr.Textbox(name, visible=False)
        button.click(drive, [controls.start, named, *settings_in], shown, api_visibility="private")
    controls.export.click(export_drive, [session], [controls.archive, controls.rrd], api_name="drive_export")
    cleared = [session, *results, controls.archive, controls.rrd]
    controls.restart.click(lambda: (None,) * 5 + ("",) + (None,) * 2, None, cleared, api_visibility="private")
    controls.start.change(lambda: None, None, session, api_visibility="private")


def _drive_tab(runner: AppRunner, examples: dict[str, Any]) -> None:
    """The Drive tab: a start image, then one camera step at a time (buttons or keys); the world so
    far is kept per client session."""
    import gradio as gr

    with gr.Tab("Drive", id="drive"):
        session = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2, elem_id="drive-controls"):
                controls = _drive_controls(examples)
            with gr.Column(scale=3):
                results = _drive_results()
        _wire_drive(runner, session, controls, results)


def build_app(runner: AppRunner, model_name: str) -> Any:
    """The ``gradio.Blocks`` of the app around ``runner``; API names ``/reconstruct``, ``/predict``,
    ``/plan`` (each returns video, scene, plot, archive, summary), ``/drive`` (image, move, step length,
    angle, steps, seed; returns video, scene, plot, latency in seconds, summary; the world so far is kept
    per client session) and ``/drive_export`` (returns the zip and the ``.rrd``)."""
    import gradio as gr

    files, _ = write_examples(runner.workdir / "examples")  # the inputs of `aether examples`
    examples = {"video": files["clip.mp4"], "observation": files["obs.png"], "goal": files["goal.png"]}
    size = f"{runner.pipe.width}x{runner.pipe.height}"
    with gr.Blocks(title="AETHER") as app:
        gr.Markdown(INTRO.format(model=model_name, size=size))
        _reconstruct_tab(runner, examples)
        _predict_tab(runner, examples)
        _plan_tab(runner, examples)
        _drive_tab(runner, examples)
        app.load(None, None, None, js=_drive_keys_js())
    return app


def serve(
    model: str | os.PathLike | None = None,
    *,
    base: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str | None = None,
    share: bool = False,
    block: bool = True,
) -> Any:
    """Load ``model`` (default: ``make demo``'s export; ``base``: its CogVideoX base folder or hub id, as
    ``AetherPipeline.from_pretrained``), build the app and start serving it; returns the running
    ``gradio.Blocks`` (``block=False`` returns at once, for tests and notebooks)."""
    from aether.apps.extras import require
    from aether.apps.model import default_model, load_model
    from aether.hub import check_model_id

    source = default_model() if model is None else model  # fails in an instant when there is none
    check_model_id(source)  # a missing folder or an unreachable hub id fails before the imports
    if base is not None:
        check_model_id(base, "vae/config.json", "--base")
    gr = require("gradio", "aether app")
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    pipe = load_model(source, base=base, torch_dtype=dtype)
    pipe.to(device)
    if str(device).startswith("cuda"):
        pipe.enable_vae_tiling()
    runner = AppRunner(pipe)
    app = build_app(runner, str(source))
    app.queue(default_concurrency_limit=1)
    try:
        app.launch(
            server_name=host,
            server_port=port,
            share=share,
            max_file_size="500mb",
            prevent_thread_lock=not block,
            allowed_paths=[str(runner.workdir)],
            theme=gr.themes.Soft(),
        )
    finally:
        if block:  # served until interrupted (or failed to start): remove this run's files
            runner.cleanup()
    return app
