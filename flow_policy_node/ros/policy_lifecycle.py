"""The policy node: a thin lifecycle adapter over :class:`~flow_policy_node.control.runtime.PolicyRuntime`.

The runtime decides (what to run, when to hold, how chunks join); this node declares the
parameters, walks the lifecycle, converts messages and publishes what the runtime produces.
``configure`` loads the checkpoint and checks it against the robot; ``activate`` starts the
inference thread; ``deactivate`` holds; ``cleanup`` drops the policy. With ``autostart``
(default) the node configures and activates itself.

Threads: one SingleThreadedExecutor runs every callback (each only converts and stores,
or flips a flag) and one plain inference thread runs the policy when a chunk is due. An
ExecuteCommand goal is a coroutine that awaits its outcome, so it occupies no thread.
(rclpy 9's MultiThreadedExecutor re-submits callbacks that have not started yet in a tight
loop: it kept an idle policy node at 100% of a core and, through the GIL, made inference
25x slower; see README, "Performance in the running system".)
"""

from __future__ import annotations

import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from flow_policy_msgs.action import ExecuteCommand
from flow_policy_msgs.msg import PolicyStatus
from flow_policy_msgs.srv import SetEnabled
from flow_policy_node.control.commands import Embedder, minilm_embedder
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.loading import load_runtime
from flow_policy_node.control.observations import JOINTS
from flow_policy_node.control.runtime import DISABLED, UNCONFIGURED, PolicyRuntime, Trajectory
from flow_policy_node.images import compressed_to_rgb, image_to_rgb
from flow_policy_node.ros import conversions as conv
from flow_policy_node.ros.markers import predicted_path
from flow_policy_node.ros.status import diagnostics_msg, status_msg

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
PREEMPTED = "preempted: a newer goal, command or reset replaced this one"
# No QoS event handlers on low-rate topics: rclpy's executor walks every handler on every
# wake-up (230 a second from joint states and /clock), and these topics need no warning.
# The sensor subscriptions and the trajectory publisher keep rclpy's default warnings.
QUIET_SUB = SubscriptionEventCallbacks(use_default_callbacks=False)
QUIET_PUB = PublisherEventCallbacks(use_default_callbacks=False)


@dataclass
class _Goal:
    handle: typing.Any  # rclpy ServerGoalHandle
    task: str
    start: float
    timeout: float
    first_chunk: int
    done: Future  # (success, message, elapsed_s, chunks) once the goal ends


def declare_config(node) -> PolicyNodeConfig:
    """Every PolicyNodeConfig field as a parameter (YAML, -p, launch), read back typed."""
    defaults, hints, values = PolicyNodeConfig(), typing.get_type_hints(PolicyNodeConfig), {}
    for f in fields(PolicyNodeConfig):
        descriptor = ParameterDescriptor(dynamic_typing=True)
        value = node.declare_parameter(f.name, getattr(defaults, f.name), descriptor).value
        if hints[f.name] is float:
            value = float(value)
        elif hints[f.name] == list[float]:
            value = [float(v) for v in value]
        values[f.name] = value
    return PolicyNodeConfig(**values)


class PolicyNode(LifecycleNode):
    def __init__(self, embedder_loader: Callable[[], Embedder] = minilm_embedder, **kwargs) -> None:
        """kwargs go to rclpy's Node (context, parameter_overrides, ...).

        embedder_loader: loads the language model for free-text commands (in the background).
        """
        super().__init__("flow_policy_node", **kwargs)
        self.embedder_loader = embedder_loader
        self.cfg = declare_config(self)
        self.runtime: PolicyRuntime | None = None
        self.label, self.last_error, self.enabled = "unconfigured", "", True
        self.goal: _Goal | None = None
        self._frame, self._stop = threading.Event(), threading.Event()
        self._worker: threading.Thread | None = None
        self._subs: list = []
        self.traj_pub = self.path_pub = None
        cfg = self.cfg
        self.status_pub = self.create_publisher(PolicyStatus, cfg.status_topic, 10, event_callbacks=QUIET_PUB)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10, event_callbacks=QUIET_PUB)
        self.create_service(SetEnabled, "flow_policy/set_enabled", self.on_set_enabled)
        self.create_service(Trigger, "flow_policy/reset", self.on_reset)
        self.action = ActionServer(
            self,
            ExecuteCommand,
            "flow_policy/execute",
            execute_callback=self.execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=self.on_cancel,
        )
        self.create_timer(1.0 / cfg.status_rate_hz, self.publish_status)
        self.create_timer(1.0 / cfg.diagnostics_rate_hz, self.publish_diagnostics)
        self.goal_timer = self.create_timer(0.1, self.check_goal, autostart=False)
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
        qos = QoSProfile(depth=self.cfg.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.traj_pub = self.create_lifecycle_publisher(JointTrajectory, self.cfg.trajectory_topic, qos)
        self.path_pub = self.create_lifecycle_publisher(
            MarkerArray, self.cfg.path_topic, 1, event_callbacks=QUIET_PUB
        )
        self._create_subscriptions()
        self.runtime.enabled = self.enabled
        self.label, self.last_error = "inactive", ""
        self.get_logger().info(f"configured {self.cfg.checkpoint}: {self.runtime.describe()}")
        if self.cfg.command:
            self.runtime.command(self.cfg.command, wait_for_model=True)
        return super().on_configure(state)

    def _create_subscriptions(self) -> None:
        cfg = self.cfg
        best_effort = cfg.sensor_qos == "best_effort"
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        # Depth 1: the runtime keeps only the newest sample, and each queued one would cost the
        # executor a wake-up (see ``idle``) before the newest is seen.
        sensor_qos = QoSProfile(depth=1, reliability=reliability)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        sub = self.create_subscription
        self._subs = [
            sub(JointState, cfg.joint_state_topic, self.on_joint_state, sensor_qos),
            sub(String, cfg.command_topic, self.on_command, 10, event_callbacks=QUIET_SUB),
            sub(Bool, cfg.task_success_topic, self.on_task_success, 10, event_callbacks=QUIET_SUB),
            # RViz publishes clicked points volatile, the sim latches its task goal: listen to
            # both (a volatile publisher is incompatible with the latched one: expected, quiet).
            sub(PointStamped, cfg.goal_topic, self.on_goal, 10, event_callbacks=QUIET_SUB),
            sub(
                PointStamped,
                cfg.goal_topic,
                self.on_goal,
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
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        self.label = "active"
        task = self.runtime.task
        self.get_logger().info(f"active: {task!r}" if task else "active: waiting for a command")
        return super().on_activate(state)

    def on_deactivate(self, state):
        self.stop_worker()
        self.runtime.hold("deactivated")  # while the trajectory publisher is still active
        self.label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for s in self._subs:
            self.destroy_subscription(s)
        self.destroy_publisher(self.traj_pub)
        self.destroy_publisher(self.path_pub)
        self._subs, self.runtime, self.label = [], None, "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state):
        self.stop_worker()
        self.label = "finalized"
        return super().on_shutdown(state)

    def stop_worker(self) -> None:
        self._stop.set()
        self._frame.set()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None

    close = stop_worker

    # --- the runtime's sink -------------------------------------------------------------

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish(self, traj: Trajectory) -> None:
        names = self.runtime.joint_names
        stamp = conv.sec_to_stamp(traj.stamp)
        self.traj_pub.publish(conv.trajectory_msg(names, traj.positions, traj.dt, stamp, traj.velocities))
        kin = self.runtime.kinematics
        if kin is not None and len(traj.positions) > 1 and self.path_pub.get_subscription_count() > 0:
            q = np.vstack([traj.start[None], traj.positions])
            points = kin.positions(q, names, self.cfg.tcp_link)
            self.path_pub.publish(
                predicted_path(points, self.cfg.base_frame, self.get_clock().now().to_msg())
            )

    def log(self, level: str, text: str) -> None:
        # rclpy pins one severity per call site: one call per severity.
        if level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    # --- inputs: convert, store, wake the inference thread ------------------------------

    def _stamp(self, header) -> float:
        t = conv.stamp_to_sec(header.stamp)
        return t if t > 0 else self.now()  # unstamped drivers: treat as "just now"

    def _wake(self, stream: str) -> None:
        if stream == self.runtime.cache.primary and self.runtime.running:
            self._frame.set()

    def on_joint_state(self, msg) -> None:
        try:
            self.runtime.put_joints(
                conv.joint_positions(msg, self.runtime.joint_names), self._stamp(msg.header)
            )
        except Exception as exc:  # hold, never crash the executor
            self.runtime.put_error(JOINTS, f"{self.cfg.joint_state_topic}: {exc}")
        self._wake(JOINTS)

    def on_image(self, camera: str, topic: str, msg) -> None:
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
            self.runtime.put_image(camera, rgb, self._stamp(msg.header), topic)
        except Exception as exc:  # hold, never crash the executor
            self.runtime.put_error(camera, f"{topic}: {exc}")
        self._wake(camera)

    def on_command(self, msg) -> None:
        self.command(msg.data)

    def command(self, text: str):
        if self.goal is not None:
            self._end_goal(False, PREEMPTED)
        res = self.runtime.command(text)
        self._frame.set()
        return res

    def on_goal(self, msg) -> None:
        p = np.array([msg.point.x, msg.point.y, msg.point.z])
        self.runtime.set_goal(p, msg.header.frame_id)

    def on_task_success(self, msg) -> None:
        goal = self.goal
        if msg.data and goal is not None:
            self._end_goal(
                True, f"{goal.task!r} succeeded after {self.now() - goal.start:.1f} s", "task succeeded"
            )

    def on_set_enabled(self, request, response):
        # The switch belongs to the node: it holds across configure/cleanup.
        self.enabled = bool(request.enabled)
        if self.runtime is not None:
            self.runtime.set_enabled(self.enabled)
        self._frame.set()
        response.success = True
        response.message = "enabled" if self.enabled else "disabled: holding"
        return response

    def on_reset(self, request, response):
        if self.goal is not None:
            self._end_goal(False, PREEMPTED)
        if self.runtime is not None:
            self.runtime.reset()
        response.success, response.message = True, "reset: holding, command and goal cleared"
        return response

    # --- ExecuteCommand: one goal at a time, newest wins --------------------------------

    async def execute(self, goal_handle):
        req, result = goal_handle.request, ExecuteCommand.Result()
        if self.label != "active":
            goal_handle.abort()
            result.message = f"node is {self.label}, not active: {self.last_error}"
            return result
        res = self.command(req.command)
        result.resolved_task = res.task or ""
        if res.task is None:
            goal_handle.abort()
            result.message = res.message
            return result
        # Timeout on the node's clock: simulated seconds under use_sim_time, so a simulator
        # running slower than real time does not eat into it.
        self.goal = _Goal(goal_handle, res.task, self.now(), req.timeout_s, self.runtime.chunk_id, Future())
        self.goal_timer.reset()
        result.success, result.message, result.elapsed_s, result.chunks = await self.goal.done
        if result.success:
            goal_handle.succeed()
        elif goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def _end_goal(self, success: bool, message: str, hold: str = "") -> None:
        """Resolve the active goal; ``hold``: stop the task and hold the arm, saying why."""
        goal, self.goal = self.goal, None
        self.goal_timer.cancel()
        if hold:
            self.runtime.stop(hold)
        elapsed, chunks = self.now() - goal.start, self.runtime.chunk_id - goal.first_chunk
        goal.done.set_result((success, message, elapsed, chunks))

    def on_cancel(self, goal_handle):
        if self.goal is not None and self.goal.handle is goal_handle:
            self._end_goal(False, "canceled: holding", hold="goal canceled")
        return CancelResponse.ACCEPT

    def check_goal(self) -> None:
        goal = self.goal
        if goal is None:
            return
        elapsed = self.now() - goal.start
        if goal.timeout > 0 and elapsed > goal.timeout:
            self._end_goal(
                False, f"timed out after {goal.timeout:.1f} s without task success", "goal timed out"
            )
            return
        feedback = ExecuteCommand.Feedback(resolved_task=goal.task, state=self.state())
        feedback.progress = min(1.0, elapsed / goal.timeout) if goal.timeout > 0 else 0.0
        feedback.chunks = self.runtime.chunk_id - goal.first_chunk
        goal.handle.publish_feedback(feedback)

    # --- inference thread ---------------------------------------------------------------

    def _work(self) -> None:
        self.runtime.start_thread()
        while not self._stop.is_set():
            self._frame.wait(timeout=0.5)
            self._frame.clear()
            if self._stop.is_set():
                break
            try:
                self.runtime.step()
            except Exception as exc:  # never let the worker die silently: hold and report
                self.runtime.hold(f"inference failed: {type(exc).__name__}: {exc}")
                self.last_error = f"inference failed: {exc}"

    # --- status -------------------------------------------------------------------------

    def idle(self) -> bool:
        """No goal and no task: nothing needs a sensor message the moment it arrives."""
        return self.goal is None and (self.runtime is None or not self.runtime.running)

    def state(self) -> str:
        if not self.enabled:
            return DISABLED
        if self.runtime is None or self.label in ("unconfigured", "finalized"):
            return UNCONFIGURED
        if self.runtime.enabled and self.label != "active":
            return "idle"
        return self.runtime.state()

    def _error(self) -> str:
        return self.last_error or (self.runtime.last_error if self.runtime else "")

    def _status(self) -> PolicyStatus:
        return status_msg(self.runtime, self.state(), self._error(), self.get_clock().now().to_msg())

    def publish_status(self) -> None:
        self.status_pub.publish(self._status())

    def publish_diagnostics(self) -> None:
        free_text = self.runtime.resolver.free_text_status() if self.runtime else "not configured"
        msg = diagnostics_msg(
            self._status(), self._error(), self.cfg.checkpoint, self.cfg.chunk_blending, free_text
        )
        self.diag_pub.publish(msg)
