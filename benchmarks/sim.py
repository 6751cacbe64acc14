"""Simulator speed and expert quality.

    python benchmarks/sim.py      # writes benchmarks/results/sim.json

Expert success over 50 seeded episodes per task, physics steps per second (2 ms steps,
the arm tracking targets, no rendering), and offscreen render time per frame (EGL or
OSMesa on the CPU) at 96x96 and 224x224, against a 640x480 frame as the baseline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mujoco

from flow_policy_node.sim.env import ArmEnv, SimConfig
from flow_policy_node.sim.expert import run_expert_episode
from flow_policy_node.tasks import TASKS

OUT = Path(__file__).parent / "results" / "sim.json"


def render_ms(size: tuple[int, int], n: int = 100, moving: bool = True) -> float:
    """Milliseconds per front-camera frame; ``moving``: the arm moves between frames, so each
    one is rendered (at rest the env returns its last frame, which is what ``moving=False`` times)."""
    env = ArmEnv(SimConfig(image_size=size))
    env.reset("pick_red", 0)
    env.render("front")
    total = 0.0
    for _ in range(n):
        if moving:
            env.data.qpos[env.qadr[0]] += 1e-3  # 1 mrad of the base joint: a new frame
            mujoco.mj_forward(env.model, env.data)
        t = time.perf_counter()
        env.render("front")
        total += time.perf_counter() - t
    env.close()
    return total / n * 1000


def main() -> None:
    env = ArmEnv(SimConfig(render=False))
    results: dict = {"expert_success": {}}
    for task in TASKS:
        eps = [run_expert_episode(env, task, s) for s in range(50)]
        results["expert_success"][task] = sum(e.success for e in eps) / len(eps)
        if task == "obstacle":
            results["obstacle_front_fraction"] = sum(e.side == 1 for e in eps) / len(eps)
    env.reset("pick_red", 0)
    n = 5000
    t = time.perf_counter()
    env.advance(n * env.model.opt.timestep)
    results["physics_steps_per_s"] = n / (time.perf_counter() - t)
    results["realtime_factor_physics_only"] = results["physics_steps_per_s"] * env.model.opt.timestep
    env.close()
    results["render_ms_96"] = render_ms((96, 96))
    results["render_ms_224"] = render_ms((224, 224))
    results["render_ms_640x480_baseline"] = render_ms((480, 640), 30)
    results["render_ms_96_at_rest"] = render_ms((96, 96), moving=False)
    results["render_speedup_96_vs_640x480"] = results["render_ms_640x480_baseline"] / results["render_ms_96"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
