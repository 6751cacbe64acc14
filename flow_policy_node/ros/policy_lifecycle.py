"""The policy node: a thin lifecycle adapter over :class:`~flow_policy_node.control.runtime.PolicyRuntime`.

The runtime decides (what to run, when to hold, how chunks join, when a goal ends); this
node declares the parameters, walks the lifecycle, converts messages and publishes what the
runtime produces. ``configure`` loads the checkpoint and checks it against the robot;
``activate`` starts the inference thread; ``deactivate`` holds; ``cleanup`` drops the
policy. With ``autostart`` (default) the node configures and activates itself.

The trajectory and path publishers are lifecycle publishers (silent unless active). Status
and /diagnostics are plain publishers on purpose: an unconfigured node must still say why
(a checkpoint that does not fit the robot), and `flow-policy run` reads it there.

Threads: one SingleThreadedExecutor runs every callback (each only converts and stores,
or flips a flag) and the runtime's inference thread runs the policy when a chunk is due. An
ExecuteCommand goal is a coroutine that awaits its outcome, so it occupies no thread.
(rclpy 9's MultiThreadedExecutor re-submits callbacks that have not started yet in a tight
loop: it kept an idle policy node at 100% of a core and, through the GIL, made inference
25x slower; see README, "Performance in the running system".)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from flow_policy_msgs.msg import PolicyStatus
from flow_policy_msgs.srv import SetEnabled
from flow_policy_node import names
from flow_policy_node.control.commands import Embedder, minilm_embedder
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.loading import load_runtime
from flow_policy_node.control.observations import JOINTS
from flow_policy_node.control.runtime import PolicyRuntime, Trajectory
from flow_policy_node.images import compressed_to_rgb, image_to_rgb
from flow_policy_node.ros import conversions as conv
from flow_policy_node.ros.execute_action import ExecuteCommandServer
from flow_policy_node.ros.markers import predicted_path
from flow_policy_node.ros.params import declare_config
from flow_policy_node.ros.status import diagnostics_msg, policy_state, status_msg

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
# No QoS event handlers on low-rate topics: rclpy's executor walks every handler on every
# wake-up (230 a second from joint states and /clock), and these topics need no warning.
# The sensor subscriptions and the trajectory publisher keep rclpy's default warnings.
QUIET_SUB = SubscriptionEventCallbacks(use_default_callbacks=False)
QUIET_PUB = PublisherEventCallbacks(use_default_callbacks=False)


class PolicyNode(LifecycleNode):
    def __init__(self, embedder_loader: Callable[[], Embedder] = minilm_embedder, **kwargs) -> None:
        """kwargs go to rclpy's Node (context, parameter_overrides, ...).

        embedder_loader: loads the language model for free-text commands (in the background).
        """
        super().__init__(names.POLICY_NODE, **kwargs)
        self.embedder_loader = embedder_loader
        self.cfg = cfg = declare_config(self, PolicyNodeConfig)
        self.runtime: PolicyRuntime | None = None
        self.label, self.last_error, self.enabled = "unconfigured", "", True
        self._subs: list = []
        self.traj_pub = self.path_pub = None
        self.status_pub = self.create_publisher(PolicyStatus, cfg.status_topic, 10, event_callbacks=QUIET_PUB)
        self.diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, 10, event_callbacks=QUIET_PUB
        )
        self.create_service(SetEnabled, names.SET_ENABLED, self.on_set_enabled)
        self.create_service(Trigger, names.POLICY_RESET, self.on_reset)
        self.action = ExecuteCommandServer(self)
        self.create_timer(1.0 / cfg.status_rate_hz, self.publish_status)
        self.create_timer(1.0 / cfg.diagnostics_rate_hz, self.publish_diagnostics)
        if cfg.autostart:
            self._autostart = self.create_timer(0.0, self._start_up)

    def _start_up(self) -> None:
        self._autostart.cancel()
        if self.trigger_configure() == SUCCESS:
            self.trigger_activate()

    # --- lifecycle ----------------------------------------------------------------------

    def on_configure(self, state):
        try:
            self.runtime = load_runtime(self.cfg, self, self.now, self.embedder_loader)
        except Exception as exc:  # CheckpointError, bad parameters, a corrupt file: say it
            self.last_error = str(exc)
            self.get_logger().error(f"cannot configure: {exc}")
            return FAILURE
        cfg = self.cfg
        qos = QoSProfile(depth=cfg.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.traj_pub = self.create_lifecycle_publisher(JointTrajectory, cfg.trajectory_topic, qos)
        self.path_pub = self.create_lifecycle_publisher(
            MarkerArray, cfg.path_topic, 1, event_callbacks=QUIET_PUB
        )
        self._create_subscriptions()
        self.runtime.enabled = self.enabled
        self.label, self.last_error = "inactive", ""
        self.get_logger().info(f"configured {cfg.checkpoint}: {self.runtime.describe()}")
        if cfg.command:
            self.runtime.command(cfg.command, wait_for_model=True)
        return super().on_configure(state)

    def _create_subscriptions(self) -> None:
        cfg, sub = self.cfg, self.create_subscription
        best_effort = cfg.sensor_qos == "best_effort"
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        # Depth 1: the runtime keeps only the newest sample, and each queued one would cost the
        # executor a wake-up (see ros/env.py ``spin``) before the newest is seen.
        sensor_qos = QoSProfile(depth=1, reliability=reliability)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._subs = [
            sub(JointState, cfg.joint_state_topic, self.on_joint_state, sensor_qos),
            sub(String, cfg.command_topic, self.on_command, 10, event_callbacks=QUIET_SUB),
            sub(Bool, cfg.task_success_topic, self.on_task_success, 10, event_callbacks=QUIET_SUB),
            # RViz publishes clicked points volatile, the sim latches its task goal: listen to
            # both (a volatile publisher is incompatible with the latched one: expected, quiet).
            sub(PointStamped, cfg.goal_topic, self.on_goal_point, 10, event_callbacks=QUIET_SUB),
            sub(
                PointStamped,
                cfg.goal_topic,
                self.on_goal_point,
                latched,
                event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda _event: None),
            ),
        ]
        topics = dict(zip(cfg.cameras, cfg.camera_topics, strict=True))
        for cam in self.runtime.cameras:
            topic = topics[cam]
            kind = CompressedImage if topic.rstrip("/").endswith("compressed") else Image
            callback = lambda msg, c=cam, t=topic: self.on_image(c, t, msg)  # noqa: E731
            self._subs.append(sub(kind, topic, callback, sensor_qos))

    def on_activate(self, state):
        self.runtime.start_inference()
        self.label = "active"
        task = self.runtime.task
        self.get_logger().info(f"active: {task!r}" if task else "active: waiting for a command")
        return super().on_activate(state)

    def on_deactivate(self, state):
        self.runtime.stop_inference()
        # While the trajectory publisher is still active: the arm holds where it is.
        self.runtime.abort_goal("node deactivated", hold="deactivated")
        self.runtime.hold("deactivated")
        self.label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for s in self._subs:
            self.destroy_subscription(s)
        self.destroy_lifecycle_publisher(self.traj_pub)
        self.destroy_lifecycle_publisher(self.path_pub)
        self._subs, self.runtime, self.label = [], None, "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state):
        self.close()
        self.label = "finalized"
        return super().on_shutdown(state)

    def close(self) -> None:
        """Stop the inference thread (the process is ending)."""
        if self.runtime is not None:
            self.runtime.stop_inference()

    # --- the runtime's sink -------------------------------------------------------------

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish(self, traj: Trajectory) -> None:
        msg = conv.trajectory_msg(
            self.runtime.joint_names, traj.positions, traj.dt, conv.sec_to_stamp(traj.stamp), traj.velocities
        )
        self.traj_pub.publish(msg)
        if self.path_pub.get_subscription_count() > 0:  # forward kinematics only for a viewer
            points = self.runtime.tcp_path(traj)
            if points is not None:
                stamp = self.get_clock().now().to_msg()
                self.path_pub.publish(predicted_path(points, self.cfg.base_frame, stamp))

    def log(self, level: str, text: str) -> None:
        # rclpy pins one severity per call site: one call per severity.
        if level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    # --- inputs: convert and hand over -------------------------------------------------

    def _stamp(self, header) -> float:
        t = conv.stamp_to_sec(header.stamp)
        return t if t > 0 else self.now()  # unstamped drivers: treat as "just now"

    def on_joint_state(self, msg) -> None:
        try:
            positions = conv.joint_positions(msg, self.runtime.joint_names)
            self.runtime.put_joints(positions, self._stamp(msg.header))
        except Exception as exc:  # hold, never crash the executor
            self.runtime.put_error(JOINTS, f"{self.cfg.joint_state_topic}: {exc}")

    def on_image(self, camera: str, topic: str, msg) -> None:
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
            self.runtime.put_image(camera, rgb, self._stamp(msg.header), topic)
        except Exception as exc:  # hold, never crash the executor
            self.runtime.put_error(camera, f"{topic}: {exc}")

    def on_command(self, msg) -> None:
        self.runtime.command(msg.data)

    def on_goal_point(self, msg) -> None:
        self.runtime.set_goal(np.array([msg.point.x, msg.point.y, msg.point.z]), msg.header.frame_id)

    def on_task_success(self, msg) -> None:
        if msg.data:
            self.runtime.task_succeeded()

    def on_set_enabled(self, request, response):
        # The switch belongs to the node: it holds across configure/cleanup.
        self.enabled = bool(request.enabled)
        if self.runtime is not None:
            self.runtime.set_enabled(self.enabled)
        response.success = True
        response.message = "enabled" if self.enabled else "disabled: holding"
        return response

    def on_reset(self, request, response):
        if self.runtime is not None:
            self.runtime.reset()
        response.success, response.message = True, "reset: holding, command and goal cleared"
        return response

    # --- status -------------------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing needs a sensor message the moment it arrives (see ros/env.py ``spin``)."""
        return self.runtime is None or self.runtime.idle

    def state(self) -> str:
        return policy_state(self.label, self.enabled, self.runtime)

    def _status(self) -> PolicyStatus:
        stamp = self.get_clock().now().to_msg()
        return status_msg(self.runtime, self.state(), self.last_error, stamp)

    def publish_status(self) -> None:
        self.status_pub.publish(self._status())

    def publish_diagnostics(self) -> None:
        self.diag_pub.publish(diagnostics_msg(self._status(), self.runtime, self.last_error, self.cfg))
