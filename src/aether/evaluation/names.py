"""The names the benchmarks are chosen by (no heavy imports: the ``aether bench`` parser uses them)."""

BENCHMARKS = ("video-depth", "camera-pose", "prediction", "planning", "camera-control")
PROTOCOLS = ("paper", "library")
SMOOTHING = ("reference", "none")
PROTOCOL_ALIGNMENTS = ("scale", "scale&shift", "scale&shiftl2", "metric")
ALIGNMENTS = (*PROTOCOL_ALIGNMENTS, "scale&shift-exact")
