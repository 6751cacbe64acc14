"""Synthetic sensor traffic at real rates, counted: does a recorder keep up?

Publishes camera images and joint states on a fixed schedule (absolute deadlines, so a
late message does not shift the ones after it) and counts what went out, so that a bag
can be checked message for message afterwards. Publishers are reliable with deep
queues, as a camera driver's default profile is; a loss is then the recorder's fault.
Used by benchmarks/recorder.py and test/test_recorder.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from flow_policy_node import names
from flow_policy_node.names import absolute


@dataclass
class LoadConfig:
    seconds: float = 30.0
    image_hz: float = 30.0
    image_size: tuple[int, int] = (480, 640)  # (height, width)
    camera_topic: str = absolute(names.camera_topic("front"))
    joint_hz: float = 500.0
    joint_topic: str = absolute(names.JOINT_STATES)


@dataclass
class LoadResult:
    sent: dict[str, int]
    seconds: float  # wall time from the first to the last message
    late_ms_p99: float  # how far behind schedule the publisher itself ran


class SensorLoad:
    def __init__(self, node, cfg: LoadConfig, joint_names: list[str]) -> None:
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, JointState

        from flow_policy_node.ros.conversions import rgb_to_image

        self.node, self.cfg, self.joint_names = node, cfg, joint_names
        qos = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        self.images = node.create_publisher(Image, cfg.camera_topic, qos)
        self.joints = node.create_publisher(JointState, cfg.joint_topic, qos)
        h, w = cfg.image_size
        # A few distinct frames, built once: the publisher must not be the bottleneck.
        rng = np.random.default_rng(0)
        self.frames = [
            rgb_to_image(rng.integers(0, 255, (h, w, 3), np.uint8), frame_id="front") for _ in range(4)
        ]

    def subscribed(self) -> bool:
        return self.images.get_subscription_count() > 0 and self.joints.get_subscription_count() > 0

    def run(self) -> LoadResult:
        from flow_policy_node.ros.conversions import joint_state_msg, sec_to_stamp

        cfg = self.cfg
        events = sorted(
            [(k / cfg.joint_hz, 0, k) for k in range(int(cfg.seconds * cfg.joint_hz))]
            + [(k / cfg.image_hz, 1, k) for k in range(int(cfg.seconds * cfg.image_hz))]
        )
        sent = {cfg.joint_topic: 0, cfg.camera_topic: 0}
        late = []
        t0 = time.monotonic()
        wall0 = time.time()
        for at, kind, k in events:
            delay = t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            late.append(max(0.0, -delay))
            stamp = sec_to_stamp(wall0 + at)
            if kind == 0:
                self.joints.publish(
                    joint_state_msg(self.joint_names, np.full(len(self.joint_names), k * 1e-3), stamp=stamp)
                )
                sent[cfg.joint_topic] += 1
            else:
                frame = self.frames[k % len(self.frames)]
                frame.header.stamp = stamp
                self.images.publish(frame)
                sent[cfg.camera_topic] += 1
        elapsed = time.monotonic() - t0
        return LoadResult(sent, elapsed, float(np.percentile(late, 99) * 1000))
