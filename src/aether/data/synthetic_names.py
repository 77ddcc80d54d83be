"""The scene and camera-motion names of the synthetic world (no heavy imports: the ``aether synth``
parser uses them)."""

SCENES = ("room", "corridor", "street")
TRAJECTORIES = ("forward", "turn", "orbit", "strafe", "static", "handheld")
