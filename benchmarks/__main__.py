"""Run every benchmark in turn: ``python -m benchmarks [NAME ...]``."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> None:
    scripts = sorted(HERE.glob("bench_*.py"))
    chosen = [s for s in scripts if not names or s.stem.removeprefix("bench_") in names]
    if not chosen:
        known = ", ".join(s.stem.removeprefix("bench_") for s in scripts)
        raise SystemExit(f"no benchmark named {names}; known: {known}")
    for script in chosen:
        print(f"== {script.stem}", flush=True)
        runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
