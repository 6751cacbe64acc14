"""The main job against its budgets: `flow-policy demo --quick` (3 min) and `flow-policy demo` (15 min).

    python benchmarks/demo.py [--only quick|default] [--runs 3]   # writes benchmarks/results/demo.json

Each run is the CLI exactly as the README's first command starts it (a fresh process, real
nodes, real bags), in a ROS domain of its own. Recorded per run: wall time and its share
of the budget, the time of each phase, success per task through ROS, chunk inference p50
and p99 in the running graph, late chunks, and, as the in-run reference for the machine's
speed, the training rate in steps/s. Closed-loop success is a handful of episodes per run,
so each kind runs ``--runs`` times (fresh demos, training and evaluation seeds are the
same: what varies is everything a user's run varies in) and the spread is recorded as
``success_min`` / ``success_median`` / ``success_max`` per task.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BUDGET_S = {"quick": 180, "default": 900}


def run(kind: str, out: Path, domain: int) -> dict:
    cmd = [str(Path(sys.executable).parent / "flow-policy"), "demo", "--out", str(out)]
    if kind == "quick":
        cmd.append("--quick")
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    wall = time.perf_counter() - t
    summary = json.loads((out / "summary.json").read_text())
    cfg = summary["config"]
    return {
        "command": " ".join(["flow-policy demo", *(["--quick"] if kind == "quick" else [])]),
        "wall_s": round(wall, 1),
        "budget_s": BUDGET_S[kind],
        "within_budget": wall <= BUDGET_S[kind],
        "timings_s": {k: round(v, 1) for k, v in summary["timings_s"].items()},
        "train_steps_per_s": round(cfg["train_steps"] / summary["timings_s"]["train"], 1),
        "success_rate": summary["success_rate"],
        "episodes_per_task": cfg["eval_episodes"],
        "chunk_ms_p50": round(summary["chunk_ms_p50"], 1),
        "chunk_ms_p99": round(summary["chunk_ms_p99"], 1),
        "late_chunks": f"{summary['late_chunks']}/{summary['chunks']}",
        "config": cfg,
    }


def spread(runs: list[dict]) -> dict:
    tasks = runs[0]["success_rate"]
    rates = {t: [r["success_rate"][t] for r in runs] for t in tasks}
    walls = [r["wall_s"] for r in runs]
    return {
        "command": runs[0]["command"],
        "runs": len(runs),
        "budget_s": runs[0]["budget_s"],
        "success_min": {t: min(v) for t, v in rates.items()},
        "success_median": {t: statistics.median(v) for t, v in rates.items()},
        "success_max": {t: max(v) for t, v in rates.items()},
        "wall_s_max": max(walls),
        "within_budget": all(r["within_budget"] for r in runs),
        "train_steps_per_s": statistics.median(r["train_steps_per_s"] for r in runs),
        "episodes_per_task": runs[0]["episodes_per_task"],
        "chunk_ms_p50": statistics.median(r["chunk_ms_p50"] for r in runs),
        "chunk_ms_p99": max(r["chunk_ms_p99"] for r in runs),
        "per_run": runs,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=tuple(BUDGET_S))
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    path = RESULTS / "demo.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, kind in enumerate(BUDGET_S):
            if args.only not in (None, kind):
                continue
            runs = []
            for k in range(args.runs):
                r = run(kind, Path(tmp) / f"{kind}{k}", domain=190 + i)
                runs.append(r)
                print(
                    f"{kind:8s} run {k + 1}: {r['wall_s']:.0f} s of {r['budget_s']} s budget; "
                    f"success {r['success_rate']}; training {r['train_steps_per_s']} steps/s",
                    flush=True,
                )
            results[kind] = spread(runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
