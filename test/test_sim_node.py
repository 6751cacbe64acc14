"""Issue 4: sim_node as its own process speaks the robot's topics over real rclpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from rosutil import Collector, node_process, spin_until

from flow_policy_node.robot import default_arm

ARM = default_arm()


@pytest.fixture
def sim(rclpy_context):
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool
    from trajectory_msgs.msg import JointTrajectory

    with node_process("sim_node", "--ros-args", "-p", "task:=reach", "-p", "seed:=3") as proc:
        node = Node("sim_probe", context=rclpy_context)
        joints, images, success = Collector(), Collector(), Collector()
        node.create_subscription(JointState, "/joint_states", joints, 50)
        node.create_subscription(Image, "/camera/front/image_raw", images, 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(Bool, "/sim/task_success", success, latched)
        pub = node.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
        assert spin_until(node, lambda: len(joints) > 5 and len(images) > 1, timeout=30), proc_output(proc)
        assert spin_until(node, lambda: pub.get_subscription_count() > 0, timeout=10)
        yield node, pub, joints, images, success, proc
        node.destroy_node()


def proc_output(proc) -> str:
    return "(running)" if proc.poll() is None else proc.stdout.read()


def latest_positions(joints: Collector) -> np.ndarray:
    from flow_policy_node.ros.conversions import joint_positions

    return joint_positions(joints.messages[-1], ARM.joint_names)


def test_sim_node_publishes_stamped_joint_states_and_images(sim) -> None:
    node, _, joints, images, success, _ = sim
    msg = joints.messages[-1]
    assert list(msg.name) == list(ARM.joint_names)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in joints.messages[-5:]]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    img = images.messages[-1]
    assert (img.height, img.width, img.encoding) == (96, 96, "rgb8")
    assert img.header.frame_id == "front_camera_optical_frame"
    assert len(img.data) == 96 * 96 * 3
    assert spin_until(node, lambda: len(success) > 0, timeout=5)
    assert success.messages[-1].data is False


def test_sim_node_executes_a_trajectory(sim) -> None:
    from flow_policy_node.ros.conversions import trajectory_msg

    node, pub, joints, _, _, _ = sim
    start = latest_positions(joints)
    target = start.copy()
    target[0] += 0.4
    target[1] += 0.2
    target[6] = 0.02
    pub.publish(trajectory_msg(ARM.joint_names, np.vstack([(start + target) / 2, target]), dt=0.5))
    assert spin_until(node, lambda: np.abs(latest_positions(joints) - target).max() < 0.02, timeout=15), (
        latest_positions(joints) - target
    )


@pytest.mark.parametrize("bad", ["unknown_joint", "nan", "short_point", "non_increasing", "out_of_limits"])
def test_sim_node_rejects_malformed_trajectories(sim, bad: str) -> None:
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    node, pub, joints, _, _, proc = sim
    start = latest_positions(joints)
    names = list(ARM.joint_names)
    goal = start + 0.3
    goal[6] = start[6]
    points = [goal.tolist(), (goal + 0.1).tolist()]
    times = [0.3, 0.6]
    if bad == "unknown_joint":
        names[2] = "elbow_of_someone_else"
    elif bad == "nan":
        points[1][3] = float("nan")
    elif bad == "short_point":
        points[1] = points[1][:5]
    elif bad == "non_increasing":
        times = [0.6, 0.3]
    elif bad == "out_of_limits":
        points[1][0] = 10.0
    msg = JointTrajectory(joint_names=names)
    for pos, t in zip(points, times, strict=True):
        msg.points.append(
            JointTrajectoryPoint(positions=pos, time_from_start=Duration(sec=0, nanosec=int(t * 1e9)))
        )
    pub.publish(msg)
    n = len(joints)
    assert spin_until(node, lambda: len(joints) > n + 100, timeout=10)  # >= 1 s of sim time
    assert np.abs(latest_positions(joints)[:6] - start[:6]).max() < 0.01
    proc.send_signal(2)
    out = proc.communicate(timeout=10)[0]
    assert "rejected trajectory" in out, out
