"""The policy as it runs in the ROS graph, against the same checkpoint offline, in one run.

    python benchmarks/insitu.py [--checkpoint DIR] [--episodes N]   # writes benchmarks/results/insitu.json

1. offline: the checkpoint's chunk latency in this process, no ROS: the node's scheduler
   (rtc prefixes) over simulator observations, one torch thread as the node runs it;
2. idle: the demo's graph (sim_node, policy_node, recorder_node between episodes) up and
   waiting for a command: CPU per process (percent of one core) and per thread;
3. graph: closed-loop pick episodes through ROS exactly as `flow-policy demo` evaluates
   (sim + policy node + this process as the orchestrator): chunk latency from the node's
   PolicyStatus, success, late chunks, CPU per process;
4. loaded: the same with a CPU-bound process beside the graph (a busy loop, one core);
5. the graph again with the policy on 2 torch threads instead of the node's default 1.

Without --checkpoint the quick demo's checkpoint is trained first (`flow-policy demo --quick`).
The machine reference: the demo's training rate (steps/s) when it trains here, else none.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
LOGS = Path("runs/insitu/logs")  # the nodes' logs
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def thread_seconds(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[f"{name}:{task.name}"] = (int(fields[11]) + int(fields[12])) / HZ
    return out


class CpuMeter:
    """Percent of one core per process (and per thread) between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.c0 = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self.th0 = {n: thread_seconds(p) for n, p in self.pids.items()}

    def stop(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        dt = time.monotonic() - self.t0
        procs = {n: round(100 * (cpu_seconds(p) - self.c0[n]) / dt, 1) for n, p in self.pids.items()}
        threads = {}
        for n, p in self.pids.items():
            now = thread_seconds(p)
            per = {t: 100 * (now[t] - self.th0[n].get(t, 0.0)) / dt for t in now}
            threads[n] = {
                t: round(v, 1) for t, v in sorted(per.items(), key=lambda kv: -kv[1])[:4] if v >= 0.5
            }
        return procs, threads


def offline_latency(checkpoint: Path, chunks: int = 200) -> dict:
    """Chunk latency of ``checkpoint`` with the node's scheduler, no ROS, one torch thread."""
    import torch

    from flow_policy_node.control.chunking import ChunkingConfig, simulate
    from flow_policy_node.control.config import PolicyNodeConfig
    from flow_policy_node.control.robot_check import load_for_robot
    from flow_policy_node.sim.env import ArmEnv, SimConfig

    node = PolicyNodeConfig()
    torch.set_num_threads(node.torch_threads)
    cameras = meta_cameras(checkpoint)
    policy, _ = load_for_robot(str(checkpoint), node.joint_names, cameras)
    env = ArmEnv(SimConfig(render=bool(cameras), cameras=tuple(cameras)))
    obs = env.reset("pick_red", 10_000)

    def make_obs(state, t):
        obs.state, obs.stamp, obs.task = np.asarray(state, np.float32), t, policy.tasks[0]
        return obs

    dt = 1.0 / policy.fps
    cfg = ChunkingConfig(
        mode="rtc",
        dt=dt,
        execution_horizon=node.execution_horizon,
        delay_margin_steps=node.delay_margin_steps,
    )
    simulate(policy, cfg, obs.state, make_obs, [0.01] * 5)  # warm-up, as the node's configure
    rollout = simulate(policy, cfg, obs.state, make_obs, [0.01] * chunks)
    env.close()
    ms = 1e3 * np.array(rollout.inference_s)
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "chunks": len(ms)}


def meta_cameras(checkpoint: Path) -> list[str]:
    return list(json.loads((checkpoint / "metadata.json").read_text()).get("cameras", []))


def idle_cpu(checkpoint: Path, seconds: float) -> dict:
    """Sim, policy node and recorder up, no command: CPU over ``seconds``."""
    from flow_policy_node.ros.graph import Graph, ros_args
    from flow_policy_node.ros.graph_client import GraphClient, wait_until_active

    with Graph(log_dir=LOGS, domain_id=int(os.environ.get("ROS_DOMAIN_ID", 171))) as graph:
        cams = meta_cameras(checkpoint)
        sim = graph.start("sim_node", "sim_node", ros_args("sim_node.yaml", cameras=cams or ["front"]))
        pol = graph.start(
            "policy_node",
            "policy_node",
            ros_args("policy_node.sim.yaml", checkpoint=str(checkpoint), command_embedding=False),
        )
        rec = graph.start("recorder_node", "recorder_node", ros_args("recorder_node.yaml", use_sim_time=True))
        with GraphClient("insitu_idle", graph.domain_id) as client:
            wait_until_active(client, graph, "policy_node", timeout=120)
        meter = CpuMeter({"sim_node": sim.pid, "policy_node": pol.pid, "recorder_node": rec.pid})
        meter.start()
        time.sleep(seconds)  # measuring an idle graph: nothing to wait for but time
        procs, threads = meter.stop()
    return {"cpu_percent": procs, "threads": threads, "seconds": seconds}


def graph_run(checkpoint: Path, episodes: int, load: bool, **policy_params) -> dict:
    """Pick episodes through ROS as the demo evaluates; ``load``: a busy loop beside it."""
    from flow_policy_node.ros.demo import DemoConfig, evaluate_ros
    from flow_policy_node.ros.graph import Graph

    cfg = DemoConfig(tasks=("pick_red",), eval_episodes=episodes, cameras=tuple(meta_cameras(checkpoint)))
    hog = None
    if load:
        # One core kept busy for at most 15 minutes (ends with this benchmark in any case).
        code = "import time\nt = time.time() + 900\nwhile time.time() < t: pass"
        hog = subprocess.Popen([sys.executable, "-c", code])
    try:
        with Graph(log_dir=LOGS, domain_id=int(os.environ.get("ROS_DOMAIN_ID", 171))) as graph:
            me = CpuMeter({"orchestrator": os.getpid()})
            me.start()
            t0 = time.monotonic()
            run = evaluate_ros(cfg, graph, checkpoint, **policy_params)
            wall = time.monotonic() - t0
            procs, _ = me.stop()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    lat = np.array(run.inference_ms)
    return {
        "success": run.success("pick_red"),
        "episodes": episodes,
        "chunk_ms_p50": float(np.percentile(lat, 50)),
        "chunk_ms_p99": float(np.percentile(lat, 99)),
        "delay_ms_p50": float(np.percentile(run.delay_ms, 50)),
        "late_chunks": run.late_chunks,
        "chunks": run.chunks,
        "orchestrator_cpu_percent": procs["orchestrator"],
        "wall_s": round(wall, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--idle-seconds", type=float, default=20.0)
    args = p.parse_args()
    reference = None
    checkpoint = args.checkpoint
    if checkpoint is None:
        out = Path("runs/insitu-demo")
        subprocess.run(
            [str(Path(sys.executable).parent / "flow-policy"), "demo", "--quick", "--out", str(out)],
            check=True,
        )
        summary = json.loads((out / "summary.json").read_text())
        reference = round(summary["config"]["train_steps"] / summary["timings_s"]["train"], 1)
        checkpoint = out / "checkpoint"
    offline = offline_latency(checkpoint)
    print(f"offline: chunk p50 {offline['p50']:.1f} ms, p99 {offline['p99']:.1f} ms")
    idle = idle_cpu(checkpoint, args.idle_seconds)
    print(f"idle CPU (% of a core): {idle['cpu_percent']}")
    quiet = graph_run(checkpoint, args.episodes, load=False)
    print(f"graph: {quiet}")
    loaded = graph_run(checkpoint, args.episodes, load=True)
    print(f"graph + busy loop: {loaded}")
    two = graph_run(checkpoint, max(3, args.episodes // 2), load=False, torch_threads=2)
    print(f"graph, policy on 2 torch threads: {two}")
    results = {
        "checkpoint": str(checkpoint),
        "machine": {"cores": os.cpu_count(), "train_steps_per_s": reference},
        "chunk_ms_p50_offline": round(offline["p50"], 2),
        "chunk_ms_p99_offline": round(offline["p99"], 2),
        "chunk_ms_p50_graph": round(quiet["chunk_ms_p50"], 2),
        "chunk_ms_p99_graph": round(quiet["chunk_ms_p99"], 2),
        "ratio_p50": round(quiet["chunk_ms_p50"] / offline["p50"], 2),
        "ratio_p99": round(quiet["chunk_ms_p99"] / offline["p99"], 2),
        "idle_cpu_percent": idle["cpu_percent"],
        "idle_threads_percent": idle["threads"],
        "graph": quiet,
        "loaded": loaded,
        "loaded_success_drop_points": round(100 * (quiet["success"] - loaded["success"]), 1),
        "graph_torch_threads_2": two,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "insitu.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
