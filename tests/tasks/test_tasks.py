import pytest
import torch

from aether.tasks import TASKS, ColorMode, Planning, Prediction, Reconstruction, Task

B, F, CC, CR, H, W = 2, 4, 3, 5, 2, 3


@pytest.fixture
def latents():
    """Distinct hand-built latents: video frame f holds 10 + f, observation 1, goal 2, raymap 100 + f."""
    frame = torch.arange(F, dtype=torch.float32)[None, :, None, None, None]
    return {
        "video": (10 + frame).expand(B, F, CC, H, W).clone(),
        "observation": torch.ones(B, 1, CC, H, W),
        "goal": torch.full((B, 1, CC, H, W), 2.0),
        "raymap": (100 + frame).expand(B, F, CR, H, W).clone(),
    }


def expected(color_frames: dict[int, float] | str, raymap: bool) -> torch.Tensor:
    out = torch.zeros(B, F, CC + CR, H, W)
    if color_frames == "video":
        for f in range(F):
            out[:, f, :CC] = 10 + f
    else:
        for f, value in color_frames.items():
            out[:, f, :CC] = value
    if raymap:
        for f in range(F):
            out[:, f, CC:] = 100 + f
    return out


@pytest.mark.parametrize("with_raymap", [True, False])
def test_conditions_follow_the_contract(latents, with_raymap):
    raymap = latents["raymap"] if with_raymap else None
    cases = {
        "reconstruction": "video",
        "prediction": {0: 1.0},
        "planning": {0: 1.0, F - 1: 2.0},
    }
    for name, color in cases.items():
        task = TASKS.build(name, raymap_channels=CR)
        condition = task.build_condition(latents, raymap, F)
        assert torch.equal(condition, expected(color, with_raymap)), name


def test_unconditional_branches(latents):
    condition = torch.randn(B, F, CC + CR, H, W)
    prediction = Prediction(raymap_channels=CR).build_unconditional(condition)
    planning = Planning(raymap_channels=CR).build_unconditional(condition)
    reconstruction = Reconstruction(raymap_channels=CR).build_unconditional(condition)
    assert (prediction[:, 0, :CC] == 0).all()
    assert torch.equal(prediction[:, 1:], condition[:, 1:])
    assert torch.equal(prediction[:, :, CC:], condition[:, :, CC:])
    for uncond in (planning, reconstruction):
        assert (uncond[:, :, :CC] == 0).all()
        assert torch.equal(uncond[:, :, CC:], condition[:, :, CC:])
    assert condition.abs().min() > 0  # inputs untouched


def test_defaults_and_overrides():
    reconstruction, prediction, planning = (
        TASKS.build(n) for n in ("reconstruction", "prediction", "planning")
    )
    assert (
        reconstruction.num_inference_steps,
        reconstruction.guidance_scale,
        reconstruction.dynamic_cfg,
    ) == (
        4,
        1.0,
        False,
    )
    assert not reconstruction.do_classifier_free_guidance
    for task in (prediction, planning):
        assert (task.num_inference_steps, task.guidance_scale, task.dynamic_cfg) == (50, 3.0, True)
        assert task.do_classifier_free_guidance and task.raymap_channels == 24
    custom = Prediction(num_inference_steps=10, guidance_scale=1.0, dynamic_cfg=False)
    assert (custom.num_inference_steps, custom.guidance_scale, custom.dynamic_cfg) == (10, 1.0, False)
    assert custom.guidance_at(999) == 1.0
    assert reconstruction.required_inputs == ("video",)
    assert prediction.required_inputs == ("observation",)
    assert planning.required_inputs == ("observation", "goal")
    assert reconstruction.optional_inputs == ("trajectory",)
    assert all(t.optional_inputs == ("trajectory", "context") for t in (prediction, planning))
    assert [t.color_mode for t in (planning, prediction, reconstruction)] == [0, 1, 2]


def test_check_inputs():
    planning = Planning()
    planning.check_inputs({"observation": 1, "goal": 2, "trajectory": 3})
    with pytest.raises(
        ValueError, match="planning: expected inputs \\['observation', 'goal'\\].*got \\['observation'\\]"
    ):
        planning.check_inputs({"observation": 1})
    with pytest.raises(ValueError, match="got \\['video'\\]"):
        Prediction().check_inputs({"video": 1})


def test_bad_input_raises(latents):
    with pytest.raises(ValueError, match="planning: expected color latents \\['observation', 'goal'\\]"):
        Planning(raymap_channels=CR).build_condition({"observation": latents["observation"]}, None, F)
    with pytest.raises(ValueError, match=f"video latents of shape \\(B,{F + 1},C,h,w\\), got \\({B}, {F},"):
        Reconstruction(raymap_channels=CR).build_condition(latents, None, F + 1)
    with pytest.raises(
        ValueError, match="raymap latents of shape \\(2, 4, 24, 2, 3\\), got \\(2, 4, 5, 2, 3\\)"
    ):
        Prediction().build_condition(latents, latents["raymap"], F)
    with pytest.raises(ValueError, match="observation latents of shape \\(B,1,C,h,w\\)"):
        Prediction(raymap_channels=CR).build_condition({"observation": latents["video"]}, None, F)
    with pytest.raises(ValueError, match=">= 2 latent frames"):
        Planning(raymap_channels=CR).build_condition(latents, None, 1)
    with pytest.raises(ValueError, match="condition \\(B,F,Cc\\+24,h,w\\)"):
        Prediction().build_unconditional(torch.zeros(B, F, 24, H, W))
    with pytest.raises(ValueError, match="num_inference_steps"):
        Prediction(num_inference_steps=0)
    with pytest.raises(ValueError, match="guidance_scale"):
        Planning(guidance_scale=-1)


def test_a_new_task_is_one_class():
    class GoalOnly(Task):
        name = "goal_only"
        required_inputs = ("observation", "goal")
        color_mode = ColorMode.OBSERVATION_GOAL

    task = GoalOnly(raymap_channels=1)
    color = {"observation": torch.ones(1, 1, 1, 1, 1), "goal": torch.full((1, 1, 1, 1, 1), 2.0)}
    assert task.build_condition(color, None, 3).flatten().tolist() == [1.0, 0.0, 0.0, 0.0, 2.0, 0.0]
