"""Recorder throughput and conversion speed.

    python benchmarks/recorder.py     # writes benchmarks/results/recorder.json

recorder_node runs as its own process, as under `ros2 launch`; this process publishes
30 s of 640x480 rgb8 images at 30 Hz plus 500 Hz joint states (ros/sensor_load.py) and
counts them against the bag. Reported: messages lost, the recorder's CPU (% of one
core, from /proc), MB/s written against MB/s offered, then `convert` of that bag to a
10 fps dataset: seconds per GB of bag and times real time, against a baseline measured
in the same run: reading every message of the bag with rosbags and nothing else.
Target: conversion faster than 60 s per GB.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from flow_policy_node import names
from flow_policy_node.names import absolute

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "recorder.json"
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
os.environ.setdefault("ROS_DOMAIN_ID", str(101 + os.getpid() % 99))
if not os.environ.get("AMENT_PREFIX_PATH"):
    os.environ["AMENT_PREFIX_PATH"] = sys.prefix

TARGET_S_PER_GB = 60.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def record(workdir: Path, seconds: float) -> dict:
    import rclpy
    from rclpy.node import Node

    from flow_policy_msgs.srv import StartEpisode, StopEpisode
    from flow_policy_node.robot import default_arm
    from flow_policy_node.ros.graph import Graph, ros_args
    from flow_policy_node.ros.sensor_load import LoadConfig, SensorLoad

    cfg = LoadConfig(seconds=seconds)
    rclpy.init()
    node = Node("recorder_bench")
    load = SensorLoad(node, cfg, list(default_arm().joint_names))
    start = node.create_client(StartEpisode, absolute(names.START_EPISODE))
    stop = node.create_client(StopEpisode, absolute(names.STOP_EPISODE))

    def call(client, request):
        assert client.wait_for_service(timeout_sec=30), "recorder_node did not come up"
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=120)
        return future.result()

    topics = [cfg.joint_topic, cfg.camera_topic]
    with Graph(domain_id=int(os.environ["ROS_DOMAIN_ID"]), log_dir=workdir) as graph:
        proc = graph.start(
            "recorder", "recorder_node", ros_args(output_dir=str(workdir / "bags"), topics=topics)
        )
        deadline = time.monotonic() + 30
        while not load.subscribed() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        reply = call(start, StartEpisode.Request(task="benchmark"))
        assert reply.success, reply.message
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        published = load.run()
        done = call(stop, StopEpisode.Request(success=True))  # returns once all is written
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
        assert done.ok, done.message
    node.destroy_node()
    rclpy.shutdown()
    counts = dict(zip(done.topics, done.message_counts, strict=True))
    size = du(Path(done.bag_path))
    offered = len(load.frames[0].data) * published.sent[cfg.camera_topic]  # bytes of image data
    return {
        "bag": done.bag_path,
        "seconds": round(published.seconds, 2),
        "published": published.sent,
        "recorded": {t: counts.get(t, 0) for t in published.sent},
        "messages_lost": sum(published.sent[t] - counts.get(t, 0) for t in published.sent),
        "publisher_late_ms_p99": round(published.late_ms_p99, 2),
        "recorder_cpu_percent": round(100 * cpu / elapsed, 1),
        "offered_image_mb_s": round(offered / published.seconds / 1e6, 1),
        "written_mb_s": round(size / elapsed / 1e6, 1),
        "bag_gb": round(size / 1e9, 3),
    }


def read_only_seconds(bag: Path) -> float:
    from rosbags.rosbag2 import Reader

    t = time.perf_counter()
    with Reader(bag) as reader:
        for _ in reader.messages():
            pass
    return time.perf_counter() - t


def convert_seconds(bag: Path, out: Path) -> tuple[float, int]:
    from flow_policy_node.data.convert import ConvertConfig, convert

    cfg = ConvertConfig(cameras={"front": absolute(names.camera_topic("front"))}, action_topic=None)
    t = time.perf_counter()
    reports = convert([bag], out, cfg, progress=False)
    return time.perf_counter() - t, reports[0].frames


def main(seconds: float = 30.0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rec = record(Path(tmp), seconds)
        bag, gb = Path(rec.pop("bag")), rec["bag_gb"]
        read_s = read_only_seconds(bag)
        conv_s, frames = convert_seconds(bag, Path(tmp) / "dataset")
    results = {
        **rec,
        "convert_frames": frames,
        "read_only_s_per_gb": round(read_s / gb, 1),
        "convert_s_per_gb": round(conv_s / gb, 1),
        "convert_vs_read_only": round(conv_s / read_s, 2),
        "convert_x_real_time": round(rec["seconds"] / conv_s, 1),
        "target_convert_s_per_gb": TARGET_S_PER_GB,
        "meets_target": rec["messages_lost"] == 0 and conv_s / gb < TARGET_S_PER_GB,
        "cpu_cores": os.cpu_count(),
    }
    for key, value in results.items():
        print(f"{key:28s} {value}")
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")
    return results


if __name__ == "__main__":
    main()
