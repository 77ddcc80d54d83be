"""``aether data verify OUT``: check an output folder of ``aether synth`` / ``aether annotate``.

Counts the units of the work plan in ``OUT/plan/`` (planned, done, failed with their reasons,
pending) and reads the member headers of every shard in ``OUT``: each sample key must appear once,
each shard must belong to a done unit, each done unit's files must be there with the keys it
recorded, and no ``.partial`` file may be left. Exit status 0 when every unit is done and nothing
is wrong, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["main", "verify_output"]


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def verify_output(out: str | Path) -> dict[str, Any]:
    """The state of the output folder ``out`` (see the module docstring): counts, ``failures``
    (unit -> reason), ``samples`` (distinct keys), ``duplicate_keys`` (key -> shards),
    ``problems`` (one line each), ``partial_files``, ``claims`` and ``ok``."""
    from aether.data.reading import verify_shard
    from aether.data.workplan import STRAY_HINT, unit_of

    out = Path(out)
    recorded = _read(out / "plan" / "plan.json")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("units"), list):
        raise ValueError(
            f"{out}: expected an output folder of `aether synth` or `aether annotate` "
            f"(with a readable plan/plan.json), found none"
        )
    units: list[str] = recorded["units"]
    done: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    pending: list[str] = []
    problems: list[str] = []
    owner: dict[str, str] = {}  # output file -> the done unit that wrote it
    for unit in units:
        record = _read(out / "plan" / "done" / f"{unit}.json")
        if isinstance(record, dict):
            missing = [f for f in record.get("outputs", []) if not (out / f).is_file()]
            if missing:
                problems.append(f"unit {unit} is recorded as done but {', '.join(missing)} is missing")
                pending.append(unit)
                continue
            done[unit] = record
            owner.update(dict.fromkeys(record.get("outputs", []), unit))
        elif isinstance(failed := _read(out / "plan" / "failed" / f"{unit}.json"), dict):
            failures[unit] = str(failed.get("error", "unknown"))
        else:
            pending.append(unit)
    first: dict[str, str] = {}  # key -> the shard it was first met in
    duplicates: dict[str, list[str]] = {}
    keys_of: dict[str, list[str]] = {}  # unit -> the keys of its shards
    damaged: set[str | None] = set()  # units with a damaged shard (reported once, above)
    for shard in sorted(out.glob("*.tar")):
        unit = owner.get(shard.name) or unit_of(shard.name, units)
        try:
            keys = verify_shard(str(shard))
        except ValueError as err:
            fix = "a rerun with --resume renders its unit again" if unit else "no unit writes it: "
            problems.append(f"{shard.name} is damaged: {err} ({fix}{'' if unit else STRAY_HINT})")
            damaged.add(unit)
            continue
        if unit is None:
            problems.append(f"{shard.name} was written by no unit of the plan ({STRAY_HINT})")
        elif shard.name not in owner:
            problems.append(
                f"{shard.name} belongs to unit {unit}, which is not done (an interrupted unit's file: "
                "a rerun with --resume rewrites it)"
            )
        else:
            keys_of.setdefault(owner[shard.name], []).extend(keys)
        for key in keys:
            if key in first:
                duplicates.setdefault(key, [first[key]]).append(shard.name)
            else:
                first[key] = shard.name
    for unit, record in done.items():
        shards = [f for f in record.get("outputs", []) if f.endswith(".tar")]
        if shards and unit not in damaged and sorted(keys_of.get(unit, [])) != sorted(record.get("keys", [])):
            problems.append(
                f"unit {unit}: its shards hold keys {sorted(keys_of.get(unit, []))}, "
                f"its record lists {sorted(record['keys'])}"
            )
    partial = sorted(str(p.relative_to(out)) for p in out.rglob("*.partial"))
    claims_dir = out / "plan" / "claims"
    claims = sorted(p.name for p in claims_dir.iterdir()) if claims_dir.is_dir() else []
    ok = len(done) == len(units) and not duplicates and not problems and not partial
    return {"command": recorded.get("command"), "planned": len(units), "done": len(done),
            "failed": len(failures), "pending": len(pending), "failures": failures,
            "samples": len(first), "duplicate_keys": duplicates, "problems": problems,
            "partial_files": partial, "claims": claims, "ok": ok}  # fmt: skip


def main(argv: list[str], prog: str = "aether data") -> int:
    """``aether data verify OUT [--json]``; argv[0] is the command name."""
    from aether.cli import HelpFormatter

    parser = argparse.ArgumentParser(prog=prog, description="Data tools.", formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="tool", required=True)
    verify = sub.add_parser(
        "verify",
        help="check an output folder of synth / annotate",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    verify.add_argument("out", help="the output folder")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv[1:])
    result = verify_output(args.out)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0 if result["ok"] else 1
    print(
        f"{args.out}: {result['planned']} units planned ({result['command']}), {result['done']} done, "
        f"{result['failed']} failed, {result['pending']} pending; {result['samples']} samples, "
        f"{len(result['duplicate_keys'])} duplicate keys"
    )
    for unit, reason in result["failures"].items():
        print(f"  failed: {unit}: {reason}")
    for key, shards in result["duplicate_keys"].items():
        print(f"  duplicate key {key!r} in {', '.join(shards)}")
    for line in result["problems"]:
        print(f"  problem: {line}")
    for path in result["partial_files"]:
        print(f"  partial file left: {path}")
    if result["claims"]:
        print(f"  {len(result['claims'])} unit(s) claimed (being worked on, or by a killed run)")
    print("ok" if result["ok"] else "NOT OK")
    return 0 if result["ok"] else 1
