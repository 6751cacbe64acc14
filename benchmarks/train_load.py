"""Training speed beside other work: torch threads and OpenMP's wait policy, quiet and loaded.

    python benchmarks/train_load.py [--steps 150]   # writes benchmarks/results/train_load.json

The demo's camera policy trains on a few scripted pick demos for ``--steps`` steps in a
fresh process per setting (OpenMP reads its environment once, when torch loads it):
2 threads with OpenMP's default (active) waiting, 2 threads with passive waiting (what
flow_policy_node sets), and 1 thread; each on a quiet machine and with a busy loop on one
core beside it (a second job on a 2-core machine). The baseline is the active default,
quiet, in the same run.
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

SETTINGS = {  # name -> (torch threads, OMP_WAIT_POLICY)
    "2_threads_active": (2, "ACTIVE"),
    "2_threads_passive": (2, "PASSIVE"),
    "1_thread": (1, "PASSIVE"),
}


def steps_per_s(threads: int, policy: str, steps: int, loaded: bool) -> float:
    hog = None
    if loaded:  # one core busy for at most 10 minutes; ends with the measurement
        hog = subprocess.Popen(
            [sys.executable, "-c", "import time\nt=time.time()+600\nwhile time.time()<t: pass"]
        )
    try:
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
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
        for name, (threads, policy) in SETTINGS.items():
            t0 = time.monotonic()
            rate = steps_per_s(threads, policy, a.steps, load == "loaded")
            results["steps_per_s"].setdefault(load, {})[name] = rate
            print(f"{load:6s} {name:18s} {rate:6.2f} steps/s  ({time.monotonic() - t0:.0f} s)", flush=True)
    base = results["steps_per_s"]["quiet"]["2_threads_active"]
    results["ratio_to_quiet_active"] = {
        load: {k: round(v / base, 2) for k, v in rates.items()}
        for load, rates in results["steps_per_s"].items()
    }
    print(json.dumps(results["ratio_to_quiet_active"], indent=1))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "train_load.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
