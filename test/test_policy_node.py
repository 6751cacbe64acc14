"""Issue 5: the policy node over real rclpy, with a checkpoint trained here on synthetic data.

The node runs as its own process (console script policy_node) where timing and threads
matter; checkpoint validation and responsiveness during inference run in-process.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from language_model import GatedLoader, real_embedder
from policy_checkpoints import JOINTS, TASKS, bright_image, train_step_checkpoint
from rosutil import Collector, node_process, spin_until

STATE = np.array([0.1, -0.2, 0.3, -0.1, 0.2, -0.3, 0.02])
TRAJ = "/arm_controller/joint_trajectory"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return train_step_checkpoint(tmp_path_factory.mktemp("ckpt") / "step")


def params_file(tmp_path: Path, checkpoint: Path, **overrides) -> str:
    params = {
        "checkpoint": str(checkpoint),
        "cameras": ["front"],
        "camera_topics": ["/camera/front/image_raw"],
        "command_embedding": False,
        "seed": 0,
        "execution_horizon": 3,
        **overrides,
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"flow_policy_node": {"ros__parameters": params}}))
    return str(path)


class FakeArm:
    """Stands in for the arm's drivers: joint states and a front camera at 20 Hz from a thread."""

    def __init__(self, node) -> None:
        from sensor_msgs.msg import Image, JointState

        self.node = node
        self.js_pub = node.create_publisher(JointState, "/joint_states", 10)
        self.img_pub = node.create_publisher(Image, "/camera/front/image_raw", 10)
        self.names = list(JOINTS)
        self.state = STATE.copy()
        self.image = bright_image(1.0)
        self.encoding = "rgb8"
        self.paused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def set(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def _loop(self) -> None:
        from flow_policy_node.ros.conversions import joint_state_msg, rgb_to_image

        while not self._stop.is_set():
            if not self.paused:
                stamp = self.node.get_clock().now().to_msg()
                index = {n: i for i, n in enumerate(JOINTS)}
                values = [self.state[index[n]] if n in index else 0.0 for n in self.names]
                self.js_pub.publish(joint_state_msg(self.names, np.array(values), stamp=stamp))
                img = rgb_to_image(self.image, stamp)
                img.encoding = self.encoding
                self.img_pub.publish(img)
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class Probe:
    """A test node: the fake arm, and collectors for trajectories, status and markers."""

    def __init__(self, context) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from trajectory_msgs.msg import JointTrajectory
        from visualization_msgs.msg import MarkerArray

        from flow_policy_msgs.msg import PolicyStatus

        self.node = Node("policy_probe", context=context)
        self.traj, self.status, self.markers = Collector(), Collector(), Collector()
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(JointTrajectory, TRAJ, self.traj, qos)
        self.node.create_subscription(PolicyStatus, "/flow_policy/status", self.status, 10)
        self.node.create_subscription(MarkerArray, "/flow_policy/predicted_path", self.markers, 10)
        self.diagnostics = Collector()
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics, 10)
        self.arm = FakeArm(self.node)

    def spin_until(self, predicate, timeout: float = 15.0) -> bool:
        return spin_until(self.node, predicate, timeout)

    def last_status(self):
        return self.status.messages[-1] if len(self.status) else None

    def wait_status(self, predicate, timeout: float = 15.0):
        start = len(self.status)

        def ok() -> bool:
            return any(predicate(m) for m in self.status.messages[start:])

        assert self.spin_until(ok, timeout), f"status never matched; last: {self.last_status()}"
        return next(m for m in self.status.messages[start:] if predicate(m))

    def wait_free_text(self, state: str, timeout: float = 15.0) -> str:
        """Wait for /diagnostics to report free-text commands in ``state``; returns the value."""

        def value() -> str:
            msgs = self.diagnostics.messages
            kv = {v.key: v.value for v in msgs[-1].status[0].values} if msgs else {}
            return kv.get("free_text_commands", "")

        assert self.spin_until(lambda: value().startswith(state), timeout), f"free text: {value()!r}"
        return value()

    def chunks_after(self, n: int) -> list:
        """Multi-point trajectories (chunks, not holds) received after the first n messages."""
        return [m for m in self.traj.messages[n:] if len(m.points) > 1]

    def wait_chunk(self, timeout: float = 15.0):
        n = len(self.traj)
        assert self.spin_until(lambda: len(self.chunks_after(n)) > 0, timeout), self.last_status()
        return self.chunks_after(n)[0]

    def assert_no_motion(self, seconds: float = 1.0) -> None:
        n = len(self.traj)
        self.spin_until(lambda: False, seconds)
        assert not self.chunks_after(n), "the node moved the arm when it should hold"

    def publish_command(self, text: str) -> None:
        from std_msgs.msg import String

        pub = self.node.create_publisher(String, "/flow_policy/command", 10)
        assert self.spin_until(lambda: pub.get_subscription_count() > 0, 10)
        pub.publish(String(data=text))

    def call(self, srv_type, name: str, request):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(request)
        assert self.spin_until(future.done, 10)
        return future.result()

    def close(self) -> None:
        self.arm.close()
        self.node.destroy_node()


@pytest.fixture
def probe(rclpy_context):
    p = Probe(rclpy_context)
    yield p
    p.close()


def output(proc) -> str:
    if proc.poll() is None:
        return "(running)"
    return proc.stdout.read()


def aligned_tail(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chunks published from different delays start at different steps; all end at step H."""
    n = min(len(a), len(b))
    return a[-n:], b[-n:]


def test_node_publishes_valid_chunks_and_matches_joints_by_name(probe, checkpoint, tmp_path) -> None:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from std_srvs.srv import Trigger

    from flow_policy_node.observation import Observation
    from flow_policy_node.robot import default_arm
    from flow_policy_node.ros.conversions import duration_to_sec, stamp_to_sec, trajectory_arrays
    from flow_policy_node.train.checkpoint import load_policy

    arm = default_arm()
    with node_process(
        "policy_node", "--ros-args", "--params-file", params_file(tmp_path, checkpoint)
    ) as proc:
        probe.wait_status(lambda m: m.state == "idle", 30)
        probe.assert_no_motion(0.5)  # observations but no command: no motion
        probe.publish_command(TASKS[0])
        first = probe.wait_chunk()
        second = probe.wait_chunk()
        for msg in (first, second):
            assert list(msg.joint_names) == JOINTS
            times, pos = trajectory_arrays(msg, JOINTS)
            np.testing.assert_allclose(np.diff(times), 0.1, atol=1e-6)  # the checkpoint's 10 Hz
            assert duration_to_sec(msg.points[0].time_from_start) == pytest.approx(0.1, abs=1e-6)
            assert np.all(np.isfinite(pos))
            assert np.all(pos >= np.array(arm.lower()) - 1e-9) and np.all(pos <= np.array(arm.upper()) + 1e-9)
            vel = np.array([p.velocities for p in msg.points])
            assert vel.shape == pos.shape and np.all(np.isfinite(vel)) and np.all(vel[-1] == 0)
            assert stamp_to_sec(msg.header.stamp) > 0
        # The first chunk is the policy's own (same seed, same observation), from its delay step on.
        policy = load_policy(checkpoint)
        want = policy.predict(
            Observation(STATE.astype(np.float32), {"front": bright_image(1.0)}, TASKS[0]), seed=0
        )
        got = trajectory_arrays(first, JOINTS)[1]
        np.testing.assert_allclose(*aligned_tail(got, want), atol=1e-4)
        assert probe.spin_until(lambda: len(probe.markers) > 0, 10)
        assert len(probe.markers.messages[-1].markers[0].points) >= 2  # the TCP path through FK
        status = probe.wait_status(lambda m: m.state == "running")
        assert status.command == TASKS[0] and status.chunk_id >= 2 and status.inference_ms > 0
        diagnostics = Collector()
        probe.node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 10)
        assert probe.spin_until(lambda: len(diagnostics) > 0, 10)
        diag = diagnostics.messages[-1].status[0]
        assert diag.level == DiagnosticStatus.OK and {"chunk_id", "inference_ms"} <= {
            v.key for v in diag.values
        }
        assert 0 <= status.observation_age_s < 0.5

        # Same observation, joints listed in another order: the same chunk.
        assert probe.call(Trigger, "/flow_policy/reset", Trigger.Request()).success
        probe.wait_status(lambda m: m.state == "idle" and m.command == "")
        probe.arm.set(names=[JOINTS[i] for i in (6, 2, 0, 5, 1, 3, 4)])
        probe.publish_command(TASKS[0])
        scrambled = trajectory_arrays(probe.wait_chunk(), JOINTS)[1]
        np.testing.assert_allclose(*aligned_tail(scrambled, want), atol=1e-4)
    assert proc.returncode == 0, output(proc)


def test_bad_inputs_hold_the_arm_and_say_why(probe, checkpoint, tmp_path) -> None:
    params = params_file(tmp_path, checkpoint, command_embedding=True)
    with node_process("policy_node", "--ros-args", "--params-file", params) as proc:
        probe.wait_status(lambda m: m.state == "idle", 60)
        probe.wait_free_text("available", 180)  # the language model loads after configure
        probe.publish_command("make me a sandwich")
        st = probe.wait_status(lambda m: "unknown command" in m.last_error)
        assert "make me a sandwich" in st.last_error and st.command == ""
        probe.assert_no_motion(1.0)

        probe.publish_command("grab the red block")  # free text: resolved by the embedding model
        probe.wait_chunk()
        assert probe.wait_status(lambda m: m.state == "running").command == TASKS[0]

        def expect_hold(expected: str, **bad) -> None:
            probe.arm.set(**bad)
            st = probe.wait_status(lambda m: m.state == "holding" and expected in m.last_error)
            probe.assert_no_motion(0.8)
            probe.arm.set(names=list(JOINTS), state=STATE.copy(), image=bright_image(1.0), encoding="rgb8")
            probe.arm.set(paused=False)
            probe.wait_chunk()
            return st

        nan_state = STATE.copy()
        nan_state[1] = np.nan
        assert "joint_2" in expect_hold("non-finite", state=nan_state).last_error
        expect_hold("lacks joints ['joint_3']", names=[n for n in JOINTS if n != "joint_3"])
        renamed = ["shoulder_pan", *JOINTS[1:]]
        assert "shoulder_pan" in expect_hold("lacks joints ['joint_1']", names=renamed).last_error
        expect_hold("unsupported image encoding 'yuv422'", encoding="yuv422")
        expect_hold("too small", image=np.zeros((1, 1, 3), np.uint8))  # not an observation
        st = expect_hold("refusing", image=np.zeros((32, 64, 3), np.uint8))
        assert "64x32" in st.last_error and "32x32" in st.last_error
        expect_hold("stale observations", paused=True)

        # Same aspect ratio, another size: resized, and the arm keeps moving.
        probe.arm.set(image=np.full((64, 64, 3), 255, np.uint8))
        n = len(probe.traj)
        assert probe.spin_until(lambda: len(probe.chunks_after(n)) >= 2), probe.last_status()
        # Status is published at 5 Hz: wait for the first one after the recovery.
        assert probe.spin_until(lambda: probe.last_status().state == "running"), probe.last_status()
    assert proc.returncode == 0, output(proc)


def test_execute_action_feedback_success_timeout_cancel(probe, checkpoint, tmp_path) -> None:
    from action_msgs.msg import GoalStatus
    from rclpy.action import ActionClient
    from std_msgs.msg import Bool

    from flow_policy_msgs.action import ExecuteCommand

    with node_process(
        "policy_node", "--ros-args", "--params-file", params_file(tmp_path, checkpoint)
    ) as proc:
        node = probe.node
        client = ActionClient(node, ExecuteCommand, "/flow_policy/execute")
        assert client.wait_for_server(timeout_sec=30), output(proc)
        probe.wait_status(lambda m: m.state == "idle", 30)
        success_pub = node.create_publisher(Bool, "/sim/task_success", 10)

        def send(command: str, timeout_s: float):
            feedback = Collector()
            future = client.send_goal_async(
                ExecuteCommand.Goal(command=command, timeout_s=timeout_s), feedback_callback=feedback
            )
            assert probe.spin_until(future.done, 10)
            handle = future.result()
            assert handle.accepted
            return handle, feedback

        def final(handle):
            """The goal's terminal status and result."""
            future = handle.get_result_async()
            assert probe.spin_until(future.done, 20)
            return future.result().status, future.result().result

        def result_of(handle):
            return final(handle)[1]

        handle, feedback = send(TASKS[0], 30.0)
        assert probe.spin_until(lambda: len(feedback) >= 2 and len(probe.chunks_after(0)) > 0)
        fb = feedback.messages[-1].feedback
        assert fb.resolved_task == TASKS[0] and 0 < fb.progress < 1
        assert probe.spin_until(lambda: success_pub.get_subscription_count() > 0, 10)
        success_pub.publish(Bool(data=True))
        result = result_of(handle)
        assert result.success and result.resolved_task == TASKS[0] and result.chunks >= 1, result
        probe.wait_status(lambda m: m.state == "idle")  # done: holds until the next command

        handle, _ = send(TASKS[1], 1.0)
        result = result_of(handle)
        assert not result.success and "timed out" in result.message

        handle, feedback = send(TASKS[1], 0.0)
        assert probe.spin_until(lambda: len(feedback) >= 1 and len(probe.chunks_after(0)) > 0)
        cancel = handle.cancel_goal_async()
        assert probe.spin_until(cancel.done, 10)
        result = result_of(handle)
        assert not result.success and "canceled" in result.message
        probe.wait_status(lambda m: m.state == "idle")
        probe.assert_no_motion(0.8)

        handle, _ = send("open the door", 5.0)
        result = result_of(handle)
        assert not result.success and "unknown command" in result.message

        # One goal at a time: a newer goal aborts the running one, and a command on the
        # topic preempts the newest; each ends once, saying so.
        first, _ = send(TASKS[0], 0.0)
        n = len(probe.traj)
        assert probe.spin_until(lambda: len(probe.chunks_after(n)) > 0)
        second, second_feedback = send(TASKS[1], 0.0)
        status, result = final(first)
        assert status == GoalStatus.STATUS_ABORTED and "preempted" in result.message, result
        assert probe.spin_until(lambda: len(second_feedback) > 0)
        assert second_feedback.messages[-1].feedback.resolved_task == TASKS[1]
        probe.publish_command(TASKS[0])
        status, result = final(second)
        assert status == GoalStatus.STATUS_ABORTED and "preempted" in result.message, result
        assert result.resolved_task == TASKS[1]
        assert probe.wait_status(lambda m: m.state == "running").command == TASKS[0]
    assert proc.returncode == 0, output(proc)


def make_node(context, embedder_loader=None, **params):
    from rclpy.parameter import Parameter

    from flow_policy_node.ros.policy_lifecycle import PolicyNode

    base = {"autostart": False, "command_embedding": False, "cameras": ["front"]}
    base["camera_topics"] = ["/camera/front/image_raw"]
    overrides = [Parameter(k, value=v) for k, v in {**base, **params}.items()]
    loader = {"embedder_loader": embedder_loader} if embedder_loader else {}
    return PolicyNode(context=context, parameter_overrides=overrides, **loader)


@contextlib.contextmanager
def spun_node(context, embedder_loader=None, **params) -> Iterator[tuple[object, Probe]]:
    """An in-process policy node spun on a thread of its own, and a probe beside it."""
    from rclpy.executors import SingleThreadedExecutor

    node = make_node(context, embedder_loader, **params)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    probe = Probe(context)
    try:
        yield node, probe
    finally:
        probe.close()
        node.close()
        executor.shutdown()
        node.destroy_node()


def test_missing_or_mismatched_checkpoint_fails_configure_naming_the_problem(
    rclpy_context, checkpoint, tmp_path
) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn

    def configure(**params) -> str:
        node = make_node(rclpy_context, **params)
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert node.state() == "unconfigured"
            return node.last_error
        finally:
            node.destroy_node()

    assert "no checkpoint configured" in configure(checkpoint="")
    assert "does not exist" in configure(checkpoint=str(tmp_path / "nowhere"))
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "model.safetensors").unlink()
    assert "lacks ['model.safetensors']" in configure(checkpoint=str(broken))
    renamed = tmp_path / "renamed"
    shutil.copytree(checkpoint, renamed)
    meta = json.loads((renamed / "metadata.json").read_text())
    meta["joint_names"][2] = "elbow"
    (renamed / "metadata.json").write_text(json.dumps(meta))
    error = configure(checkpoint=str(renamed))
    assert "robot lacks ['elbow']" in error and "checkpoint lacks ['joint_3']" in error
    error = configure(checkpoint=str(checkpoint), cameras=["wrist"], camera_topics=["/w"])
    assert "the checkpoint needs ['front']" in error
    node = make_node(rclpy_context, checkpoint=str(checkpoint))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and node.last_error == ""
        assert node.state() == "idle"
    finally:
        node.destroy_node()


def test_services_answer_while_a_chunk_is_computed(rclpy_context, checkpoint) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn

    from flow_policy_msgs.srv import SetEnabled

    # Thousands of ODE steps make one chunk take seconds: long enough to call into it.
    slow = {"ode_steps": 3000, "command": TASKS[0]}
    with spun_node(rclpy_context, checkpoint=str(checkpoint), **slow) as (node, probe):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert probe.spin_until(lambda: node.runtime.inferring, 30)
        response = probe.call(SetEnabled, "/flow_policy/set_enabled", SetEnabled.Request(enabled=False))
        assert response.success and node.runtime.inferring  # answered mid-inference
        assert probe.spin_until(lambda: not node.runtime.inferring, 60)
        probe.assert_no_motion(0.5)  # disabled during inference: its chunk is dropped
        assert node.state() == "disabled"


def test_deactivating_ends_the_running_goal_and_holds(rclpy_context, checkpoint) -> None:
    from rclpy.action import ActionClient
    from rclpy.lifecycle import TransitionCallbackReturn

    from flow_policy_msgs.action import ExecuteCommand

    with spun_node(rclpy_context, checkpoint=str(checkpoint)) as (node, probe):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        client = ActionClient(probe.node, ExecuteCommand, "/flow_policy/execute")
        assert client.wait_for_server(timeout_sec=10)
        sent = client.send_goal_async(ExecuteCommand.Goal(command=TASKS[0], timeout_s=0.0))
        assert probe.spin_until(sent.done, 10) and sent.result().accepted
        probe.wait_chunk()
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        result = sent.result().get_result_async()
        assert probe.spin_until(result.done, 10)
        assert not result.result().result.success and result.result().result.message == "node deactivated"
        assert node.runtime.task == "" and node.runtime.holding_reason == "deactivated"
        probe.assert_no_motion(0.5)  # lifecycle publishers: nothing goes out while inactive
        assert node.state() == "idle"


def test_policy_node_drives_the_mujoco_sim_in_sim_time(rclpy_context, checkpoint, tmp_path) -> None:
    """Closed loop with sim_node: /clock, 96x96 images resized to 32x32, chunks executed."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from flow_policy_msgs.msg import PolicyStatus
    from flow_policy_node.ros.conversions import duration_to_sec, joint_positions, stamp_to_sec

    params = params_file(tmp_path, checkpoint, use_sim_time=True, command=TASKS[0], control_rate_hz=20.0)
    with (
        node_process("sim_node", "--ros-args", "-p", "task:=reach", "-p", "seed:=1") as sim,
        node_process("policy_node", "--ros-args", "--params-file", params) as pol,
    ):
        node = Node("closed_loop_probe", context=rclpy_context)
        try:
            joints, traj, status, clock = Collector(), Collector(), Collector(), Collector()
            node.create_subscription(JointState, "/joint_states", joints, 50)
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
            node.create_subscription(JointTrajectory, TRAJ, traj, qos)
            node.create_subscription(PolicyStatus, "/flow_policy/status", status, 10)
            node.create_subscription(Clock, "/clock", clock, 10)
            assert spin_until(node, lambda: len(joints) > 0, 60), output(sim)
            q0 = joint_positions(joints.messages[-1], JOINTS)
            assert spin_until(node, lambda: sum(len(m.points) > 1 for m in traj.messages) >= 5, 90), (
                status.messages[-1] if len(status) else output(pol)
            )
            now = stamp_to_sec(clock.messages[-1].clock)
            for msg in traj.messages[-3:]:
                assert now - 2.0 < stamp_to_sec(msg.header.stamp) < now + 2.0  # stamped in sim time
                times = [duration_to_sec(p.time_from_start) for p in msg.points]
                np.testing.assert_allclose(np.diff(times), 0.05, atol=1e-6)  # resampled to 20 Hz
            q1 = joint_positions(joints.messages[-1], JOINTS)
            # The trained task ramps joint_1 up by 0.02 rad per step: the sim must follow.
            assert q1[0] - q0[0] > 0.05, (q0, q1)
            running = [m for m in status.messages if m.state == "running"]
            assert running and 0 <= running[-1].observation_age_s < 0.5
        finally:
            node.destroy_node()
    assert pol.returncode == 0, output(pol)


def test_clicked_point_sets_the_goal_only_in_the_base_frame(rclpy_context, checkpoint) -> None:
    from geometry_msgs.msg import Point, PointStamped
    from rclpy.lifecycle import TransitionCallbackReturn

    with spun_node(rclpy_context, checkpoint=str(checkpoint)) as (node, probe):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        pub = probe.node.create_publisher(PointStamped, "/clicked_point", 10)
        assert probe.spin_until(lambda: pub.get_subscription_count() > 0, 10)
        msg = PointStamped(point=Point(x=0.4, y=-0.1, z=0.2))
        msg.header.frame_id = "base_link"
        pub.publish(msg)
        assert probe.spin_until(lambda: node.runtime.cache.goal is not None, 10)
        np.testing.assert_allclose(node.runtime.cache.goal, [0.4, -0.1, 0.2], rtol=1e-6)
        msg.header.frame_id, msg.point.x = "camera_link", 9.0
        pub.publish(msg)
        assert probe.spin_until(lambda: "camera_link" in node.runtime.last_error, 10)
        assert node.runtime.cache.goal[0] == pytest.approx(0.4)  # no transform here: refused, not misused


def test_configure_does_not_wait_for_the_language_model(rclpy_context, checkpoint) -> None:
    """The node runs exact commands while the model loads, refuses free text saying so, and
    its diagnostics say when free text becomes available."""
    from rclpy.lifecycle import TransitionCallbackReturn

    from flow_policy_node.control.commands import NOT_YET

    loader = GatedLoader(real_embedder())
    params = {"checkpoint": str(checkpoint), "command_embedding": True}
    with spun_node(rclpy_context, loader, **params) as (node, probe):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert loader.started.is_set() and not loader.gate.is_set()
        assert "language model loading" in probe.wait_free_text("loading")
        probe.publish_command("grab the red block")
        st = probe.wait_status(lambda m: NOT_YET in m.last_error)
        assert st.command == "" and st.state == "idle"
        probe.publish_command(TASKS[0])  # exact: runs while the model loads
        probe.wait_chunk()
        loader.gate.set()
        assert "language model loaded in" in probe.wait_free_text("available", 60)
        probe.publish_command("go to the target")
        assert probe.wait_status(lambda m: m.command == TASKS[1]).last_error == ""
