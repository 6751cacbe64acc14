"""Closed-loop quality: the flow policy against regression and diffusion baselines.

    python benchmarks/policy_quality.py     # writes benchmarks/results/quality.json + quality.png

One set of scripted-expert demos in the embedded MuJoCo sim (proprioception, goal point
and task command; seeds 0..demos-1 per task), three policies that differ only in the
generative method: the same encoders, velocity network, horizon, batch, optimiser, seed
and number of steps. Diffusion samples with its default sampler (DDIM, 10 steps: the
same 10 network evaluations as flow's Euler steps). Each policy runs closed loop,
receding horizon as on the robot, over 50 seeded episodes per task (seeds 1000..1049,
never seen in training). Reported per task and method: success rate, RMS jerk of the
executed joints and chunk latency. The obstacle task is the bimodal one: the expert
passes the post on either side, and the average of the two ways hits it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from flow_policy_node.models.policy import PolicyConfig
from flow_policy_node.sim.demos import ExpertDemos
from flow_policy_node.sim.env import SimConfig
from flow_policy_node.sim.evaluate import EvalConfig, evaluate
from flow_policy_node.train.loop import TrainConfig, train

RESULTS = Path(__file__).parent / "results"
METHODS = ("flow", "regression", "diffusion")


@dataclass
class QualityConfig:
    tasks: tuple[str, ...] = ("pick_red", "reach", "obstacle")
    demos_per_task: int = 50
    train_steps: int = 4000
    batch_size: int = 64
    horizon: int = 16
    episodes: int = 50
    seed: int = 0


def plot(results: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["flow"]["tasks"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    width = 0.8 / len(METHODS)
    for m, method in enumerate(METHODS):
        x = np.arange(len(tasks)) + (m - 1) * width
        per_task = results[method]["tasks"]
        axes[0].bar(x, [100 * per_task[t]["success_rate"] for t in tasks], width, label=method)
        axes[1].bar(x, [per_task[t]["rms_jerk"] for t in tasks], width, label=method)
    for ax, label in zip(axes, ("success [%]", "RMS jerk [rad/s^3]"), strict=True):
        ax.set_xticks(np.arange(len(tasks)), tasks)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 105)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"closed loop, {results['config']['episodes']} episodes per task")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(cfg: QualityConfig, out: Path = RESULTS) -> dict:
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    data = ExpertDemos(cfg.tasks, cfg.demos_per_task, cfg.horizon)
    results: dict = {
        "config": {**cfg.__dict__, "frames": len(data), "demo_seconds": round(time.perf_counter() - t0, 1)}
    }
    for method in METHODS:
        t = time.perf_counter()
        tcfg = TrainConfig(
            policy=PolicyConfig(kind=method, horizon=cfg.horizon),
            steps=cfg.train_steps,
            batch_size=cfg.batch_size,
            lr=1e-3,
            warmup_steps=100,
            seed=cfg.seed,
            device="cpu",
        )
        with tempfile.TemporaryDirectory() as ckpt:
            policy = train(tcfg, data, ckpt).eval()
        train_s = time.perf_counter() - t
        reports = evaluate(policy, EvalConfig(cfg.tasks, cfg.episodes), SimConfig(render=False))
        results[method] = {
            "train_seconds": round(train_s, 1),
            "tasks": {
                task: {
                    "success_rate": r.success_rate,
                    "rms_jerk": round(r.rms_jerk, 2),
                    "chunk_ms_p50": round(r.chunk_ms_p50, 2),
                    "mean_time_to_success": r.mean_time_to_success,
                }
                for task, r in reports.items()
            },
        }
        line = ", ".join(f"{t} {r.success_rate:.0%}" for t, r in reports.items())
        print(f"{method:10s} {line}")
    flow, others = results["flow"]["tasks"], [results[m]["tasks"] for m in METHODS[1:]]
    results["checks"] = {
        "flow >= 90% on pick and reach": all(
            flow[t]["success_rate"] >= 0.9 for t in cfg.tasks if t.startswith("pick") or t == "reach"
        ),
        "flow at least matches both baselines on every task": all(
            flow[t]["success_rate"] >= o[t]["success_rate"] for o in others for t in cfg.tasks
        ),
        "flow ahead of regression on obstacle by >= 20 points": "obstacle" not in cfg.tasks
        or flow["obstacle"]["success_rate"]
        >= results["regression"]["tasks"]["obstacle"]["success_rate"] + 0.2,
    }
    results["seconds"] = round(time.perf_counter() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "quality.png")
    print(json.dumps(results["checks"], indent=1))
    print(f"wrote {out / 'quality.json'}, {out / 'quality.png'}")
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=QualityConfig.episodes)
    p.add_argument("--demos", type=int, default=QualityConfig.demos_per_task)
    p.add_argument("--steps", type=int, default=QualityConfig.train_steps)
    p.add_argument("--tasks", nargs="+", default=list(QualityConfig.tasks))
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    main(QualityConfig(tuple(a.tasks), a.demos, a.steps, episodes=a.episodes), a.out)
