"""Issue 6: recorder_node as its own process: counts, round trip, SIGKILL, bad directory."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosutil import node_process, spin_until

from flow_policy_node.data.convert import ConvertConfig, convert
from flow_policy_node.data.dataset import ChunkDataset
from flow_policy_node.robot import default_arm

NAMES = list(default_arm().joint_names)


class Publisher:
    """Publishes known joint states (100 Hz) and front-camera images (20 Hz) with sim-like stamps."""

    def __init__(self, node) -> None:
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String

        self.node = node
        self.js = node.create_publisher(JointState, "/joint_states", 100)
        self.img = node.create_publisher(Image, "/camera/front/image_raw", 20)
        self.cmd = node.create_publisher(String, "/flow_policy/command", 10)
        self.sent = {"/joint_states": 0, "/camera/front/image_raw": 0}
        self.t0 = time.time()

    def run(self, seconds: float) -> None:
        from flow_policy_node.ros.conversions import joint_state_msg, rgb_to_image, sec_to_stamp

        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            t = self.t0 + k * 0.01
            self.js.publish(joint_state_msg(NAMES, np.full(7, k * 0.001), stamp=sec_to_stamp(t)))
            self.sent["/joint_states"] += 1
            if k % 5 == 0:
                img = np.full((24, 32, 3), k % 256, np.uint8)
                self.img.publish(rgb_to_image(img, sec_to_stamp(t), "front"))
                self.sent["/camera/front/image_raw"] += 1
            k += 1
            time.sleep(0.01)


def call(node, client, request):
    assert client.wait_for_service(timeout_sec=15)
    future = client.call_async(request)
    assert spin_until(node, future.done, timeout=20)
    return future.result()


@pytest.fixture
def recorder(tmp_path, rclpy_context):
    from rclpy.node import Node

    from flow_policy_msgs.srv import StartEpisode, StopEpisode

    args = [
        "--ros-args",
        "-p",
        f"output_dir:={tmp_path / 'bags'}",
        "-p",
        "topics:=[/joint_states, /camera/front/image_raw, /flow_policy/command]",
    ]
    with node_process("recorder_node", *args) as proc:
        node = Node("recorder_probe", context=rclpy_context)
        pub = Publisher(node)
        start = node.create_client(StartEpisode, "/recorder/start_episode")
        stop = node.create_client(StopEpisode, "/recorder/stop_episode")
        assert spin_until(
            node, lambda: pub.js.get_subscription_count() > 0 and pub.img.get_subscription_count() > 0, 20
        )
        yield node, pub, start, stop, proc, StartEpisode, StopEpisode
        node.destroy_node()


def test_recorder_counts_match_what_was_published_and_the_bag_converts(recorder, tmp_path) -> None:
    node, pub, start, stop, _, StartEpisode, StopEpisode = recorder
    reply = call(node, start, StartEpisode.Request(task="pick up the red cube"))
    assert reply.success, reply.message
    pub.run(3.0)
    time.sleep(0.5)
    done = call(node, stop, StopEpisode.Request(success=True))
    assert done.ok, done.message
    counts = dict(zip(done.topics, done.message_counts, strict=True))
    assert counts["/joint_states"] == pub.sent["/joint_states"]
    assert counts["/camera/front/image_raw"] == pub.sent["/camera/front/image_raw"]
    meta = yaml.safe_load((Path(done.bag_path) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["custom_data"]["task"] == "pick up the red cube" and meta["custom_data"]["success"] == "true"
    assert len(meta["relative_file_paths"]) >= 2  # split every second
    cfg = ConvertConfig(cameras={"front": "/camera/front/image_raw"}, action_topic=None)
    convert([Path(done.bag_path)], tmp_path / "ds", cfg, progress=False)
    ds = ChunkDataset(tmp_path / "ds", horizon=2)
    # State at tick k is the latest published sample at or before it: value = 0.001 * index.
    steps = ds.state[:, 0] / 0.001
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    np.testing.assert_allclose(np.diff(steps), 10, atol=1.01)


def test_killed_recorder_leaves_a_bag_that_converts(recorder, tmp_path) -> None:
    node, pub, start, _, proc, StartEpisode, _ = recorder
    reply = call(node, start, StartEpisode.Request(task="reach the point"))
    assert reply.success
    pub.run(3.5)
    time.sleep(2.0)  # the recorder catches up and closes its open file within a second
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    bag = Path(reply.bag_path)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    kept = meta["topics_with_message_count"]
    js = next(t["message_count"] for t in kept if t["topic_metadata"]["name"] == "/joint_states")
    assert js >= pub.sent["/joint_states"] - 100  # at most the last second is lost
    cfg = ConvertConfig(cameras={"front": "/camera/front/image_raw"}, action_topic=None)
    reports = convert([bag], tmp_path / "ds", cfg, progress=False)
    assert reports[0].frames >= 20, reports[0]


def test_unwritable_directory_is_a_clear_error(rclpy_context, tmp_path) -> None:
    from rclpy.node import Node

    from flow_policy_msgs.srv import StartEpisode

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with node_process("recorder_node", "--ros-args", "-p", f"output_dir:={blocker / 'bags'}"):
        node = Node("recorder_probe2", context=rclpy_context)
        reply = call(
            node, node.create_client(StartEpisode, "/recorder/start_episode"), StartEpisode.Request(task="x")
        )
        assert not reply.success
        assert "bags" in reply.message and ("Not a directory" in reply.message or "cannot" in reply.message)
        node.destroy_node()


@pytest.mark.slow
def test_thirty_seconds_of_camera_and_500hz_joint_states_lose_nothing(rclpy_context, tmp_path) -> None:
    from rclpy.node import Node

    from flow_policy_msgs.srv import StartEpisode, StopEpisode
    from flow_policy_node.ros.sensor_load import LoadConfig, SensorLoad

    cfg = LoadConfig(seconds=30.0, image_hz=30.0, image_size=(480, 640), joint_hz=500.0)
    topics = f"topics:=[{cfg.joint_topic}, {cfg.camera_topic}]"
    with node_process("recorder_node", "--ros-args", "-p", f"output_dir:={tmp_path}", "-p", topics):
        node = Node("recorder_load", context=rclpy_context)
        load = SensorLoad(node, cfg, NAMES)
        assert spin_until(node, load.subscribed, 20)
        reply = call(
            node, node.create_client(StartEpisode, "/recorder/start_episode"), StartEpisode.Request(task="t")
        )
        assert reply.success, reply.message
        published = load.run()
        done = call(
            node, node.create_client(StopEpisode, "/recorder/stop_episode"), StopEpisode.Request(success=True)
        )
        node.destroy_node()
    assert done.ok, done.message
    assert published.sent == {cfg.joint_topic: 15000, cfg.camera_topic: 900}
    assert dict(zip(done.topics, done.message_counts, strict=True)) == published.sent


def test_recording_follows_the_publishers_qos(rclpy_context, tmp_path) -> None:
    """A best-effort camera and RViz's volatile clicked points are recorded, not refused."""
    from geometry_msgs.msg import PointStamped
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from flow_policy_msgs.srv import StartEpisode, StopEpisode
    from flow_policy_node.ros.conversions import rgb_to_image

    node = Node("qos_publishers", context=rclpy_context)
    camera = node.create_publisher(Image, "/camera/front/image_raw", qos_profile_sensor_data)
    clicks = node.create_publisher(PointStamped, "/clicked_point", 10)
    args = ["-p", f"output_dir:={tmp_path}", "-p", "topics:=[/camera/front/image_raw, /clicked_point]"]
    with node_process("recorder_node", "--ros-args", *args):
        assert spin_until(
            node, lambda: camera.get_subscription_count() and clicks.get_subscription_count(), 20
        )
        reply = call(
            node, node.create_client(StartEpisode, "/recorder/start_episode"), StartEpisode.Request(task="t")
        )
        assert reply.success, reply.message
        for _ in range(20):
            camera.publish(rgb_to_image(np.zeros((24, 32, 3), np.uint8)))
            clicks.publish(PointStamped())
            time.sleep(0.02)
        time.sleep(0.5)
        done = call(
            node, node.create_client(StopEpisode, "/recorder/stop_episode"), StopEpisode.Request(success=True)
        )
    node.destroy_node()
    counts = dict(zip(done.topics, done.message_counts, strict=True))
    # Best effort may drop on a loaded machine; reliable-vs-best-effort would be 0.
    assert counts["/camera/front/image_raw"] >= 15
    assert counts["/clicked_point"] == 20
