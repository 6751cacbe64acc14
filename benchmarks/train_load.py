"""Training speed beside other work: torch threads and OpenMP's wait policy, quiet and loaded.

    python benchmarks/train_load.py [--steps 150]   # writes benchmarks/results/train_load.json

The demo's camera policy trains on a few scripted pick demos for ``--steps`` steps in a
fresh process per setting (OpenMP reads its environment once, when torch loads it):
2 threads with libgomp's default waiting (spin 300k turns, then sleep), with a short spin
(GOMP_SPINCOUNT=10000, what flow_policy_node sets), with passive waiting (no spin), and
1 thread; each on a quiet machine and with a busy loop on one core beside it (a second job
on a 2-core machine). The baseline is libgomp's default, quiet, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

WORKER = """
import sys, tempfile, time
from flow_policy_node.models.encoders import ObservationEncoderConfig
from flow_policy_node.models.policy import PolicyConfig
from flow_policy_node.ros.demo import DemoConfig
from flow_policy_node.sim.demos import ExpertDemos
from flow_policy_node.sim.env import SimConfig
from flow_policy_node.train.loop import TrainConfig, train

threads, steps = int(sys.argv[1]), int(sys.argv[2])
d = DemoConfig()
data = ExpertDemos(("pick_red",), 4, 16, cameras=d.cameras, sim=SimConfig(cameras=d.cameras))
cfg = TrainConfig(
    policy=PolicyConfig(encoder=ObservationEncoderConfig()),
    steps=steps, batch_size=d.batch_size, threads=threads, warmup_steps=5,
)
with tempfile.TemporaryDirectory() as out:
    t = time.perf_counter()
    train(cfg, data, out)
    print(steps / (time.perf_counter() - t))
"""

# name -> (torch threads, OpenMP environment). libgomp's default spin count is named
# explicitly: without one, flow_policy_node would set its own.
SETTINGS = {
    "2_threads_default": (2, {"GOMP_SPINCOUNT": "300000"}),
    "2_threads_spin10k": (2, {"GOMP_SPINCOUNT": "10000"}),
    "2_threads_passive": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "1_thread": (1, {"GOMP_SPINCOUNT": "10000"}),
}
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def steps_per_s(threads: int, omp_env: dict[str, str], steps: int, loaded: bool) -> float:
    hog = None
    if loaded:  # one core busy for at most 10 minutes; ends with the measurement
        hog = subprocess.Popen(
            [sys.executable, "-c", "import time\nt=time.time()+600\nwhile time.time()<t: pass"]
        )
    try:
        env = {k: v for k, v in os.environ.items() if k not in OMP_VARS} | omp_env
        out = subprocess.run(
            [sys.executable, "-c", WORKER, str(threads), str(steps)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return round(float(out.stdout.strip().splitlines()[-1]), 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    results: dict = {"steps": a.steps, "cores": os.cpu_count(), "steps_per_s": {}}
    for load in ("quiet", "loaded"):
        for name, (threads, omp_env) in SETTINGS.items():
            t0 = time.monotonic()
            rate = steps_per_s(threads, omp_env, a.steps, load == "loaded")
            results["steps_per_s"].setdefault(load, {})[name] = rate
            print(f"{load:6s} {name:18s} {rate:6.2f} steps/s  ({time.monotonic() - t0:.0f} s)", flush=True)
    base = results["steps_per_s"]["quiet"]["2_threads_default"]
    results["ratio_to_quiet_default"] = {
        load: {k: round(v / base, 2) for k, v in rates.items()}
        for load, rates in results["steps_per_s"].items()
    }
    print(json.dumps(results["ratio_to_quiet_default"], indent=1))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "train_load.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
