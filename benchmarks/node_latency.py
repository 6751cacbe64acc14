"""Policy node benchmark: end-to-end latency through ROS, seam smoothness, chunk rate.

    python benchmarks/node_latency.py [--samples 100] [--checkpoint DIR]

1. Seams (in-process, virtual time, reproducible): a flow policy trained here on a
   bimodal task (joint 1 sweeps left or right, SweepDataset) is run through the node's
   chunk scheduler with 100-200 ms of injected inference delay. seam_jump_<mode> = max
   joint jump across chunk seams (the step into a chunk's first freshly generated point)
   / median in-chunk step (1.0 = seams as smooth as the inside of a chunk); the baseline
   is naive replacement, measured in the same run. max_step_<mode> (max step / median
   step anywhere) shows where a mode switch went instead.
2. End-to-end latency (two processes), with a camera policy (StepDataset, 32x32 front
   camera): policy_node runs as its own process; this
   process publishes joint states (100 Hz) and a front camera image every 200 ms and
   times image publication -> JointTrajectory reception (same host clock). The baseline
   is the policy's own inference time (same checkpoint, same prefix length, in-process).
3. chunks_per_second: RTC chunks (with prefix) the policy computes per second on one thread.

Writes benchmarks/results/node.json. Targets (2 CPU cores): e2e_ms_p99 <= 40, seam_jump_rtc <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from flow_policy_node import names
from flow_policy_node.names import absolute

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))  # the synthetic datasets the tests train on
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
os.environ.setdefault("ROS_DOMAIN_ID", str(101 + os.getpid() % 99))
if not os.environ.get("AMENT_PREFIX_PATH"):
    os.environ["AMENT_PREFIX_PATH"] = sys.prefix

TARGETS = {"e2e_ms_p99": 40.0, "seam_jump_rtc": 2.0}


def seams(policy, n_chunks: int) -> dict:
    from policy_checkpoints import TASKS

    from flow_policy_node.control.chunking import ChunkingConfig, simulate
    from flow_policy_node.observation import Observation

    delays = list(np.random.default_rng(0).uniform(0.1, 0.2, n_chunks))
    start = np.zeros(7)
    out = {}
    for mode in ("naive", "ensemble", "rtc"):
        cfg = ChunkingConfig(mode=mode, dt=1.0 / policy.fps, execution_horizon=4)
        rollout = simulate(
            policy, cfg, start, lambda s, t: Observation(s.astype(np.float32), {}, TASKS[0]), delays
        )
        out[f"seam_jump_{mode}"] = round(rollout.seam_jump, 3)
        steps = np.abs(np.diff(rollout.positions, axis=0)).max(axis=1)
        out[f"max_step_{mode}"] = round(float(steps.max() / np.median(steps[~rollout.seams])), 3)
    out["seam_rtc_vs_naive"] = round(out["seam_jump_rtc"] / out["seam_jump_naive"], 3)
    out["seam_chunks"] = n_chunks
    return out


def inference(policy, n: int = 100) -> dict:
    from policy_checkpoints import TASKS, bright_image

    from flow_policy_node.observation import Observation

    obs = Observation(np.zeros(7, np.float32), {"front": bright_image(1.0)}, TASKS[0])
    chunk = policy.predict(obs, seed=0)
    prefix = chunk[:2]
    times = []
    for i in range(n):
        tic = time.perf_counter()
        policy.predict(obs, prefix=prefix, seed=i)
        times.append(time.perf_counter() - tic)
    ms = np.array(times) * 1e3
    return {
        "inference_ms_p50": round(float(np.median(ms)), 2),
        "chunks_per_second": round(1e3 / ms.mean(), 1),
    }


def end_to_end(checkpoint: Path, samples: int) -> dict:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from trajectory_msgs.msg import JointTrajectory

    from flow_policy_node.robot import default_arm
    from flow_policy_node.ros.conversions import joint_state_msg, rgb_to_image

    params = {
        "checkpoint": str(checkpoint),
        "cameras": ["front"],
        "camera_topics": [absolute(names.camera_topic("front"))],
        "command": "pick up the red cube",
        "command_embedding": False,
        "execution_horizon": 1,
        "chunk_blending": "rtc",
    }
    tmp = Path(tempfile.mkdtemp())
    (tmp / "params.yaml").write_text(json.dumps({"flow_policy_node": {"ros__parameters": params}}))
    node_proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "policy_node"),
            "--ros-args",
            "--params-file",
            str(tmp / "params.yaml"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    rclpy.init()
    node = Node("node_latency_bench")
    joint_names = list(default_arm().joint_names)
    js_pub = node.create_publisher(JointState, absolute(names.JOINT_STATES), 10)
    img_pub = node.create_publisher(Image, absolute(names.camera_topic("front")), 10)
    received: list[tuple[float, int]] = []
    node.create_subscription(
        JointTrajectory,
        absolute(names.TRAJECTORY),
        lambda m: received.append((time.time(), len(m.points))),
        QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    )
    published: list[float] = []
    stop = threading.Event()
    state = np.array([0.1, -0.2, 0.3, -0.1, 0.2, -0.3, 0.02])
    image = np.full((32, 32, 3), 255, np.uint8)

    def joints() -> None:
        while not stop.is_set():
            js_pub.publish(joint_state_msg(joint_names, state, stamp=node.get_clock().now().to_msg()))
            time.sleep(0.01)

    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    feeder = threading.Thread(target=joints, daemon=True)
    spinner.start()
    feeder.start()
    try:
        deadline = time.time() + 60
        while not received and time.time() < deadline:  # node start-up, model load, first chunk
            img_pub.publish(rgb_to_image(image, node.get_clock().now().to_msg()))
            time.sleep(0.2)
        if not received:
            raise RuntimeError("policy_node produced no trajectory within 60 s")
        time.sleep(0.5)
        received.clear()
        t_start = time.time()
        for _ in range(samples):
            msg = rgb_to_image(image, node.get_clock().now().to_msg())
            published.append(time.time())
            img_pub.publish(msg)
            time.sleep(0.2)
        time.sleep(0.3)
        duration = time.time() - t_start
    finally:
        stop.set()
        node_proc.send_signal(2)
        try:
            node_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        rclpy.shutdown()
    pub = np.array(published)
    lat = []
    for t_recv, n_points in received:
        if n_points < 2:
            continue
        before = pub[pub <= t_recv]
        if len(before):
            lat.append((t_recv - before[-1]) * 1e3)
    lat_ms = np.array(lat)
    return {
        "e2e_ms_p50": round(float(np.percentile(lat_ms, 50)), 2),
        "e2e_ms_p99": round(float(np.percentile(lat_ms, 99)), 2),
        "e2e_samples": len(lat_ms),
        "images_published": samples,
        "node_chunks_per_second": round(len(lat_ms) / duration, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=100, help="images for the latency measurement")
    parser.add_argument("--chunks", type=int, default=60, help="chunks per seam rollout")
    parser.add_argument("--sweep-steps", type=int, default=1500, help="training steps of the bimodal policy")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "node.json")
    args = parser.parse_args()

    import torch
    from policy_checkpoints import train_step_checkpoint, train_sweep_checkpoint

    from flow_policy_node.train.checkpoint import load_policy

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp())
    sweep = load_policy(train_sweep_checkpoint(work / "sweep", steps=args.sweep_steps))
    camera = train_step_checkpoint(work / "step")
    result = {
        **seams(sweep, args.chunks),
        **inference(load_policy(camera)),
        **end_to_end(camera, args.samples),
    }
    result["e2e_overhead_ms_p50"] = round(result["e2e_ms_p50"] - result["inference_ms_p50"], 2)
    result["injected_delay_s"] = [0.1, 0.2]
    result["targets"] = TARGETS
    result["meets_targets"] = {k: result[k] <= v for k, v in TARGETS.items()}
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch_threads": 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("e2e latency p50 / p99 (ms)", f"{result['e2e_ms_p50']:.1f} / {result['e2e_ms_p99']:.1f}"),
        ("  baseline: inference p50 (ms)", f"{result['inference_ms_p50']:.1f}"),
        ("  ROS + scheduling overhead p50 (ms)", f"{result['e2e_overhead_ms_p50']:.1f}"),
        (
            "seam jump naive (baseline) / max step",
            f"{result['seam_jump_naive']:.2f} / {result['max_step_naive']:.2f}",
        ),
        (
            "seam jump ensemble / max step",
            f"{result['seam_jump_ensemble']:.2f} / {result['max_step_ensemble']:.2f}",
        ),
        ("seam jump rtc / max step", f"{result['seam_jump_rtc']:.2f} / {result['max_step_rtc']:.2f}"),
        ("chunks per second (rtc, 1 thread)", f"{result['chunks_per_second']:.0f}"),
        ("chunks per second seen from the node", f"{result['node_chunks_per_second']:.1f} (1 per image)"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"targets {TARGETS}: {result['meets_targets']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
