"""Latency robustness: closed-loop success and jerk versus inference delay, through the node.

    python benchmarks/delay.py [--episodes N] [--delays 0 100 200 300]   # results/delay.json + .png

One flow checkpoint trained on scripted-expert demos of pick_red and obstacle (the bimodal
task: demos go round the post on either side). For each chunk-joining method (rtc,
ensemble, naive) and each injected delay, the sim node and a policy node with
``chunk_blending`` and ``inject_delay_ms`` set run the episodes exactly as `flow-policy
demo` evaluates them. The delay is on the node's clock: each chunk is published no earlier
than that long after the observation it was computed from, as if inference were that slow.
RMS jerk is of the executed joint path (10 Hz samples of /joint_states), as in the
ROS-free evaluator.

The same checkpoint, methods and delays also run without ROS, through the node's
scheduler in simulated time (``EvalConfig.chunking``, seeds as the graph's):
``offline_success`` / ``offline_rms_jerk``. A gap between the two is the graph's, not the
policy's. ``--offline-only`` refreshes those keys in an existing delay.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
METHODS = ("rtc", "ensemble", "naive")
TASKS = ("pick_red", "obstacle")


def train_checkpoint(out: Path, demos: int, steps: int) -> Path:
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from flow_policy_node.sim.demos import ExpertDemos
    from flow_policy_node.train.loop import TrainConfig, train

    if (out / "model.safetensors").exists():
        return out
    torch.set_num_threads(os.cpu_count() or 1)
    data = ExpertDemos(TASKS, demos, 16)
    train(
        TrainConfig(steps=steps, batch_size=64, lr=1e-3, warmup_steps=100, seed=0),
        data,
        out,
        dataset_name="expert",
    )
    return out


def evaluate_offline(checkpoint: Path, episodes: int, delays: list[int]) -> tuple[dict, dict]:
    """(success, rms_jerk) as method -> task -> delay -> value, without ROS."""
    import torch

    from flow_policy_node.control.chunking import ChunkingConfig
    from flow_policy_node.sim.env import SimConfig
    from flow_policy_node.sim.evaluate import EvalConfig, evaluate
    from flow_policy_node.train.checkpoint import load_policy

    torch.set_num_threads(1)  # as the node runs it
    policy = load_policy(checkpoint).eval()
    success: dict = {m: {t: {} for t in TASKS} for m in METHODS}
    jerk: dict = {m: {t: {} for t in TASKS} for m in METHODS}
    for method in METHODS:
        for delay in delays:
            cfg = EvalConfig(
                tasks=TASKS,
                episodes=episodes,
                seed=10_000,  # the graph's seeds (flow-policy demo's evaluation, seed 0)
                max_seconds=8.0,
                chunking=ChunkingConfig(mode=method),
                delay_ms=float(delay),
            )
            reports = evaluate(policy, cfg, SimConfig(render=False), progress=False)
            for task in TASKS:
                success[method][task][str(delay)] = reports[task].success_rate
                jerk[method][task][str(delay)] = round(reports[task].rms_jerk, 2)
            print("offline", method, delay, {t: success[method][t][str(delay)] for t in TASKS}, flush=True)
    return success, jerk


def plot(results: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delays = results["config"]["delays_ms"]
    fig, axes = plt.subplots(1, 2 * len(TASKS), figsize=(4 * 2 * len(TASKS), 3.3))
    for t, task in enumerate(TASKS):
        for m, method in enumerate(METHODS):
            success = [100 * results["success"][method][task][str(d)] for d in delays]
            jerk = [results["rms_jerk"][method][task][str(d)] for d in delays]
            axes[2 * t].plot(delays, success, "o-", color=f"C{m}", label=method)
            axes[2 * t + 1].plot(delays, jerk, "o-", color=f"C{m}", label=method)
        axes[2 * t].set_title(f"{task}: success [%]", fontsize=9)
        axes[2 * t].set_ylim(0, 105)
        axes[2 * t + 1].set_title(f"{task}: RMS jerk [rad/s^3]", fontsize=9)
        for ax in axes[2 * t : 2 * t + 2]:
            ax.set_xlabel("injected inference delay [ms]")
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"through the policy node in the sim, {results['config']['episodes']} episodes per point", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--delays", type=int, nargs="+", default=[0, 100, 200, 300])
    p.add_argument("--demos", type=int, default=50)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/delay/checkpoint"))
    p.add_argument("--offline-only", action="store_true", help="refresh only the offline_* keys")
    args = p.parse_args()
    if args.offline_only:
        results = json.loads((RESULTS / "delay.json").read_text())
        delays = results["config"]["delays_ms"]
        off = evaluate_offline(args.checkpoint, results["config"]["episodes"], delays)
        results["offline_success"], results["offline_rms_jerk"] = off
        (RESULTS / "delay.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote the offline figures into {RESULTS / 'delay.json'}")
        return

    from flow_policy_node.ros.demo import DemoConfig, evaluate_ros
    from flow_policy_node.ros.graph import Graph
    from flow_policy_node.sim.evaluate import rms_jerk

    reused = (args.checkpoint / "model.safetensors").exists()
    t0 = time.perf_counter()
    checkpoint = train_checkpoint(args.checkpoint, args.demos, args.steps)
    train_s = None if reused else round(time.perf_counter() - t0, 1)
    cfg = DemoConfig(tasks=TASKS, eval_episodes=args.episodes, episode_timeout=8.0)
    success: dict = {m: {t: {} for t in TASKS} for m in METHODS}
    jerk: dict = {m: {t: {} for t in TASKS} for m in METHODS}
    late: dict = {m: {} for m in METHODS}
    domain = int(os.environ.get("ROS_DOMAIN_ID", 172))
    for method in METHODS:
        for delay in args.delays:
            with Graph(log_dir=args.checkpoint.parent / "logs", domain_id=domain) as graph:
                run = evaluate_ros(
                    cfg, graph, checkpoint, chunk_blending=method, inject_delay_ms=float(delay)
                )
            for task in TASKS:
                eps = [e for e in run.episodes if e.task == task]
                success[method][task][str(delay)] = run.success(task)
                jerk[method][task][str(delay)] = round(
                    float(
                        np.mean([rms_jerk(np.array(e.joints)[:, :6], 0.1) for e in eps if len(e.joints) > 4])
                    ),
                    2,
                )
            late[method][str(delay)] = f"{run.late_chunks}/{run.chunks}"
            print(method, delay, {t: success[method][t][str(delay)] for t in TASKS}, flush=True)
    results = {
        "config": {
            "methods": METHODS,
            "tasks": TASKS,
            "delays_ms": args.delays,
            "episodes": args.episodes,
            "demos_per_task": args.demos,
            "train_steps": args.steps,
            "train_s": train_s,  # None: an existing checkpoint was reused
            "eval_real_time_factor": cfg.eval_real_time_factor,
        },
        "success": success,
        "rms_jerk": jerk,
        "late_chunks": late,
    }
    results["offline_success"], results["offline_rms_jerk"] = evaluate_offline(
        checkpoint, args.episodes, args.delays
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "delay.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "delay.png")
    print(f"wrote {RESULTS / 'delay.json'} and delay.png")


if __name__ == "__main__":
    main()
