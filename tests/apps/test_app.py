"""``aether app``: the Gradio server on a free local port with the tiny model, driven over HTTP by
``gradio_client`` for the three tasks, and once through a real headless Chromium.

The browser test uses playwright's Python package with Debian's ``chromium`` (``.ci/run`` installs it
when missing) and is skipped, saying so, only when no chromium executable exists. Its screenshot is
kept in ``$AETHER_SCREENSHOT_DIR`` when that is set (else in the test's temporary folder).
"""

import os
import shutil
import socket
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import trimesh

gradio = pytest.importorskip("gradio", reason="gradio (the 'app' extra) is not installed")
from gradio_client import Client, handle_file  # noqa: E402

from aether.pipeline import Trajectory, World4D  # noqa: E402
from aether.pipeline.presets import preset_poses  # noqa: E402

from .conftest import HEIGHT, WIDTH  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    from aether.apps.web import serve

    port = _free_port()
    app = serve(tiny_model_dir, port=port, block=False, device="cpu")
    yield app, f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server[1], verbose=False)


def _check_result(result, num_frames: int) -> World4D:
    video, scene, plot, archive, summary = result
    frames = iio.imread(video, plugin="pyav")
    scale = -(-240 // WIDTH)  # small results are enlarged with nearest neighbours to be readable
    assert frames.shape[:2] == (num_frames, HEIGHT * scale) and frames.shape[2] > 2 * WIDTH * scale
    glb = trimesh.load(scene, force="scene")
    clouds = [g for g in glb.geometry.values() if isinstance(g, trimesh.PointCloud)]
    assert len(clouds) == 1 and len(clouds[0].vertices) > 0
    assert sum(isinstance(g, trimesh.Trimesh) for g in glb.geometry.values()) >= 2  # camera frustums
    assert iio.imread(plot).ndim == 3
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        assert {
            "world.npz",
            "video.mp4",
            "points.ply",
            "points.glb",
            "trajectory.json",
            "trajectory.txt",
        } <= names
        zf.extract("world.npz", Path(archive).parent / "unzipped")
    world = World4D.load(Path(archive).parent / "unzipped" / "world.npz")
    assert world.depth.shape == (num_frames, HEIGHT, WIDTH)
    assert f"{num_frames} frames of {WIDTH}x{HEIGHT}" in summary
    return world


def _clip(tmp_path, num_frames=17) -> Path:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (num_frames, 4, 6, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(coarse, 16, axis=1), 16, axis=2)
    path = tmp_path / f"clip{num_frames}.mp4"
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=12)
    return path


def test_reconstruct_predict_and_plan_over_http(client, tmp_path):
    _check_result(client.predict(handle_file(_clip(tmp_path)), 2, 0, api_name="/reconstruct"), 17)

    image = tmp_path / "obs.png"
    iio.imwrite(image, np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    world = _check_result(
        client.predict(handle_file(image), None, "turn left", "17", 2, 0, api_name="/predict"), 17
    )
    assert world.meta["action"] is True

    c2w = preset_poses("forward", 25)
    path = Trajectory(c2w=c2w, K=np.diag([60.0, 60.0, 1.0]) + [[0, 0, 23.5], [0, 0, 15.5], [0, 0, 0]])
    path = path.to_json(tmp_path / "path.json")
    goal = tmp_path / "goal.png"
    iio.imwrite(goal, np.random.default_rng(2).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    result = client.predict(
        handle_file(image), handle_file(goal), handle_file(path), "none", "17", 2, 0, api_name="/plan"
    )
    assert _check_result(result, 25).meta["task"] == "planning"  # the file's 25 poses set the length


def test_frame_counts_are_offered_and_taken_as_the_schema_says(client, tmp_path):
    """gradio_client's schema offers the frame counts as strings; the app takes them (and ints)."""
    from gradio_client.exceptions import AppError

    (frames,) = [p for p in client.view_api(return_format="dict", print_info=False)["named_endpoints"][
        "/predict"]["parameters"] if p["label"].startswith("frames")]  # fmt: skip
    assert frames["python_type"]["type"] == "Literal['17', '25', '33', '41']"
    image = tmp_path / "obs.png"
    iio.imwrite(image, np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    world = _check_result(
        client.predict(handle_file(image), None, "none", "25", 1, 0, api_name="/predict"), 25
    )
    assert world.meta["action"] is False
    _check_result(client.predict(handle_file(image), None, "none", 17, 1, 0, api_name="/predict"), 17)
    with pytest.raises(AppError, match="frames: expected one of 17, 25, 33, 41, got '18'"):
        client.predict(handle_file(image), None, "none", "18", 1, 0, api_name="/predict")


def test_drive_two_steps_and_export_over_http(server, tmp_path):
    """The Drive tab: the sample image, two steps (the world and the path grow, each with a latency),
    then the export (zip and .rrd); a fresh client is a fresh session."""
    from aether.apps.examples import write_examples

    drive = Client(server[1], verbose=False)
    files, _ = write_examples(tmp_path / "examples")
    image = handle_file(files["obs.png"])
    video, scene, plot, latency, summary = drive.predict(image, "forward", 0.25, 15, 1, 0, api_name="/drive")
    first = iio.imread(video, plugin="pyav")
    assert latency > 0 and "1 step(s), 17 frames" in summary and "RANDOM WEIGHTS" in summary
    video, scene, plot, latency, summary = drive.predict(
        image, "turn left", 0.25, 15, 1, 0, api_name="/drive"
    )
    assert len(iio.imread(video, plugin="pyav")) == 33 > len(first) and latency > 0
    assert "2 step(s), 33 frames" in summary and iio.imread(plot).ndim == 3
    glb = trimesh.load(scene, force="scene")
    assert sum(isinstance(g, trimesh.Trimesh) for g in glb.geometry.values()) >= 2  # camera frustums
    archive, rrd = drive.predict(api_name="/drive_export")
    assert Path(rrd).suffix == ".rrd" and Path(rrd).stat().st_size > 0
    with zipfile.ZipFile(archive) as zf:
        assert {"world.npz", "video.mp4", "points.ply", "trajectory.json", "world.rrd"} <= set(zf.namelist())
        zf.extract("world.npz", tmp_path / "unzipped")
    world = World4D.load(tmp_path / "unzipped" / "world.npz")
    assert world.num_frames == 33 and world.meta["moves"] == ["forward", "turn left"]
    np.testing.assert_allclose(world.requested_c2w[16, :3, 3], [0, 0, 0.25], atol=1e-6)


def test_bad_uploads_get_a_message_and_the_server_keeps_serving(client, tmp_path):
    from gradio_client.exceptions import AppError

    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(AppError, match="not a readable video"):
        client.predict(handle_file(text), 0, 0, api_name="/reconstruct")
    with pytest.raises(AppError, match=r"1 frame\(s\); reconstruction needs at least"):
        client.predict(handle_file(_clip(tmp_path, 1)), 0, 0, api_name="/reconstruct")
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("1", (8000, 4000)).save(huge)
    with pytest.raises(AppError, match="8000x4000 pixels"):
        client.predict(handle_file(huge), None, "none", "17", 0, 0, api_name="/predict")
    with pytest.raises(AppError, match="Invalid file type.*image"):  # Gradio's own check of file types
        client.predict(handle_file(text), None, "none", "17", 0, 0, api_name="/predict")
    _check_result(client.predict(handle_file(_clip(tmp_path)), 2, 0, api_name="/reconstruct"), 17)


def _drawn_fraction(png: bytes) -> float:
    """The fraction of a panel screenshot's pixels (below its label) that differ from its background."""
    import io

    from PIL import Image

    panel = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float)[40:-10, 10:-10]
    background = np.median(panel.reshape(-1, 3), axis=0)
    return float((np.abs(panel - background).max(-1) > 40).mean())


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (apt-get install chromium)")
def test_browser_runs_the_bundled_example(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    shots = Path(os.environ.get("AETHER_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1100},
        )
        try:
            page = browser.new_page()
            page.goto(server[1], wait_until="load", timeout=120_000)  # the page keeps a connection open
            page.locator("#reconstruct-run").wait_for(timeout=120_000)
            page.locator("button.gallery-item").first.click()  # the bundled example video
            page.locator("#reconstruct-video video").first.wait_for(timeout=60_000)
            page.locator("#reconstruct-run").click()
            summary = page.locator("#reconstruct-summary")
            summary.get_by_text("reconstruction: 17 frames").wait_for(timeout=180_000)
            page.locator("#reconstruct-result-video video").first.wait_for(timeout=30_000)
            page.locator("#reconstruct-archive a").first.wait_for(timeout=30_000)
            for _ in range(
                60
            ):  # WebGL draws the 3D view some time after its file arrives (slower under load)
                if _drawn_fraction(page.locator("#reconstruct-scene").screenshot()) > 0.003:
                    break
                page.wait_for_timeout(1000)
            page.screenshot(path=str(shots / "app_reconstruct.png"), full_page=True)
            boxes = {
                name: page.locator(f"#reconstruct-{name}").bounding_box()
                for name in ("result-video", "scene", "plot")
            }
        finally:
            browser.close()
    from PIL import Image

    shot = np.asarray(Image.open(shots / "app_reconstruct.png").convert("RGB")).astype(float)
    for name, box in boxes.items():
        assert box["width"] >= 400 and box["height"] >= 400, f"the {name} panel is too small to read: {box}"
        x, y, w, h = (int(box[k]) for k in ("x", "y", "width", "height"))
        panel = shot[y + 40 : y + h - 10, x + 10 : x + w - 10]  # below the panel's label
        background = np.median(panel.reshape(-1, 3), axis=0)
        drawn = (np.abs(panel - background).max(-1) > 40).mean()
        assert drawn > 0.003, f"the {name} panel is blank ({drawn:.2%} of it drawn)"  # points are 1 px
        assert len(np.unique(panel.reshape(-1, 3).astype(np.uint8), axis=0)) > 50, (
            f"the {name} panel is blank"
        )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (apt-get install chromium)")
def test_browser_drives_with_the_keyboard(server, tmp_path):
    """In the Drive tab the W key steps forward and the left arrow turns, as the buttons do."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1100},
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(server[1], wait_until="load", timeout=120_000)
            page.get_by_role("tab", name="Drive").click()
            page.locator("#drive-forward").wait_for(timeout=60_000)
            page.locator("#drive-controls button.gallery-item").first.click()  # the sample image
            page.wait_for_timeout(1000)
            page.keyboard.press("w")
            summary = page.locator("#drive-summary")
            summary.get_by_text("1 step(s), 17 frames").wait_for(timeout=180_000)
            page.keyboard.press("ArrowLeft")
            summary.get_by_text("2 step(s), 33 frames").wait_for(timeout=180_000)
            page.locator("#drive-result-video video").first.wait_for(timeout=30_000)
        finally:
            browser.close()
