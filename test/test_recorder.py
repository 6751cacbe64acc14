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


def _qos_entries(text_or_list) -> list[dict]:
    """rosbag2's offered_qos_profiles: a YAML list (metadata.yaml v9) or its YAML text (storage)."""
    return yaml.safe_load(text_or_list) if isinstance(text_or_list, str) else text_or_list


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bags_keep_offered_qos_latching_and_honest_times(rclpy_context, tmp_path, storage) -> None:
    """Read back with rosbags, the mcap library and sqlite3: QoS per topic, latched topics
    transient-local, latched messages from before the episode written at its start."""
    import sqlite3

    from geometry_msgs.msg import PointStamped
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
    from rosbags.highlevel import AnyReader
    from rosbags.interfaces import QosDurability, QosReliability
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import String

    from flow_policy_msgs.srv import StartEpisode, StopEpisode
    from flow_policy_node.ros.conversions import joint_state_msg, rgb_to_image

    node = Node("qos_bag_publishers", context=rclpy_context)
    camera = node.create_publisher(Image, "/camera/front/image_raw", qos_profile_sensor_data)
    clicks = node.create_publisher(PointStamped, "/clicked_point", 10)  # RViz: volatile
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    description = node.create_publisher(String, "/robot_description", latched)
    joints = node.create_publisher(JointState, "/joint_states", 10)
    pubs = (camera, clicks, description, joints)
    topics = "topics:=[/camera/front/image_raw, /clicked_point, /robot_description, /joint_states]"
    args = ["-p", f"output_dir:={tmp_path}", "-p", f"storage:={storage}", "-p", topics]
    with node_process("recorder_node", "--ros-args", *args):
        assert spin_until(node, lambda: all(p.get_subscription_count() for p in pubs), 20)
        description.publish(String(data="<robot name='arm'/>"))
        clicks.publish(PointStamped())
        spin_until(node, lambda: False, 1.0)  # both arrive, well before the episode
        before = time.time_ns()
        reply = call(
            node, node.create_client(StartEpisode, "/recorder/start_episode"), StartEpisode.Request(task="t")
        )
        after = time.time_ns()
        assert reply.success, reply.message
        for _ in range(10):
            camera.publish(rgb_to_image(np.zeros((24, 32, 3), np.uint8)))
            joints.publish(joint_state_msg(NAMES, np.zeros(7)))
            time.sleep(0.05)
        time.sleep(0.3)
        done = call(
            node, node.create_client(StopEpisode, "/recorder/stop_episode"), StopEpisode.Request(success=True)
        )
        assert done.ok, done.message
    node.destroy_node()
    bag = Path(done.bag_path)

    # rosbags: QoS per connection, and the times.
    with AnyReader([bag]) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
        assert reader.start_time >= before, (reader.start_time - before) / 1e9
        stamps: dict[str, list[int]] = {}
        for conn, t, _ in reader.messages():
            stamps.setdefault(conn.topic, []).append(t)
    for topic in ("/clicked_point", "/robot_description"):
        assert qos[topic] and all(q.durability == QosDurability.TRANSIENT_LOCAL for q in qos[topic]), qos[
            topic
        ]
        assert len(stamps[topic]) == 1 and before <= stamps[topic][0] <= after  # at the episode's start
    assert [q.reliability for q in qos["/camera/front/image_raw"]] == [QosReliability.BEST_EFFORT]
    assert [q.durability for q in qos["/camera/front/image_raw"]] == [QosDurability.VOLATILE]
    assert [(q.reliability, q.durability) for q in qos["/joint_states"]] == [
        (QosReliability.RELIABLE, QosDurability.VOLATILE)
    ]
    assert min(min(v) for v in stamps.values()) >= before
    assert len(stamps["/camera/front/image_raw"]) >= 8 and len(stamps["/joint_states"]) == 10

    # metadata.yaml: rosbag2's v9 list of profiles, with its spelling of the policies.
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["starting_time"]["nanoseconds_since_epoch"] >= before
    in_meta = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
        for t in meta["topics_with_message_count"]
    }
    assert in_meta["/robot_description"][0]["durability"] == "transient_local"
    assert in_meta["/camera/front/image_raw"][0]["reliability"] == "best_effort"
    assert in_meta["/camera/front/image_raw"][0]["deadline"] == {"sec": 9223372036, "nsec": 854775807}

    # The storage's own copy: MCAP channel metadata / the sqlite3 topics table, as YAML text.
    stored: dict[str, list[dict]] = {}
    if storage == "mcap":
        from mcap.reader import make_reader

        for path in sorted(bag.glob("*.mcap")):
            with path.open("rb") as f:
                reader = make_reader(f)
                summary = reader.get_summary()
                for channel in summary.channels.values():
                    stored.setdefault(channel.topic, _qos_entries(channel.metadata["offered_qos_profiles"]))
                for _, channel, message in reader.iter_messages():
                    assert message.log_time >= before, channel.topic
    else:
        for path in sorted(bag.glob("*.db3")):
            with sqlite3.connect(path) as db:
                for name, text in db.execute("SELECT name, offered_qos_profiles FROM topics"):
                    stored.setdefault(name, _qos_entries(text))
                assert db.execute("SELECT MIN(timestamp) FROM messages").fetchone()[0] >= before
    assert stored["/clicked_point"][0]["durability"] == "transient_local"
    assert stored["/robot_description"][0]["durability"] == "transient_local"
    assert stored["/camera/front/image_raw"][0]["reliability"] == "best_effort"
    assert stored["/joint_states"][0]["reliability"] == "reliable"
    assert set(stored["/joint_states"][0]) == {
        "history",
        "depth",
        "reliability",
        "durability",
        "deadline",
        "lifespan",
        "liveliness",
        "liveliness_lease_duration",
        "avoid_ros_namespace_conventions",
    }
