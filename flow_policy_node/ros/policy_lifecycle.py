"""The policy node: a managed (lifecycle) rclpy node around a FlowPolicy.

``configure`` loads the checkpoint and checks it against the robot (joint names, action
size, cameras, image size); ``activate`` starts the inference worker; ``deactivate``
holds the arm and stops publishing; ``cleanup`` drops the policy. With the parameter
``autostart`` (default true) the node configures and activates itself right after it
starts spinning; the standard lifecycle services (``~/change_state``) serve a manager.

Threads (inference never stalls a callback; services answer while a chunk is computed):

- executor threads (MultiThreadedExecutor): sensor callbacks only convert and store into
  the ObservationCache; services and the action run in a reentrant group of their own,
  timers in another;
- the inference worker (a plain thread): when the next chunk is due it waits for a fresh
  camera frame, runs the policy, schedules the chunk (rtc / ensemble / naive, see
  :mod:`flow_policy_node.control.chunking`), applies the safety limits and publishes.

Safety: nothing moves before a command, while disabled, or on missing, bad or stale
observations (the node holds once, logs once, and says why in PolicyStatus). Targets are
clamped to position limits, every step is rate limited, and no NaN/Inf is published.
"""

from __future__ import annotations

import threading
import time
import typing
from dataclasses import fields

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PointStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, ColorRGBA, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from flow_policy_msgs.action import ExecuteCommand
from flow_policy_msgs.msg import PolicyStatus
from flow_policy_msgs.srv import SetEnabled
from flow_policy_node.control.chunking import ChunkingConfig, ChunkScheduler, Segment
from flow_policy_node.control.commands import CommandResolver, Resolution, minilm_embedder
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.observations import JOINTS, ObservationCache, image_size_problem
from flow_policy_node.control.robot_check import load_for_robot
from flow_policy_node.control.safety import JointLimits, UnsafeChunk, limit_chunk, velocities
from flow_policy_node.observation import Observation
from flow_policy_node.ros.conversions import (
    ConversionError,
    compressed_to_rgb,
    image_to_rgb,
    joint_positions,
    resize_rgb,
    sec_to_stamp,
    stamp_to_sec,
    trajectory_msg,
)


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        """kwargs go to rclpy's Node (context, parameter_overrides, ...)."""
        super().__init__("flow_policy_node", **kwargs)
        self.cfg = self._declare_config()
        self._lock = threading.RLock()
        self.enabled = True
        self.task = ""  # resolved task text ("" = no command: no motion)
        self.chunk_id = 0
        self.chunks_since_command = 0  # seeds restart with each command or reset
        self.inferring = False  # True while the worker is inside policy.predict
        self.inference_ms = 0.0
        self.last_error = ""
        self.holding_reason = ""
        self._holding_kind = ""
        self.policy = None
        self.cache: ObservationCache | None = None
        self.scheduler: ChunkScheduler | None = None
        self.resolver: CommandResolver | None = None
        self.kinematics = None
        self._subs: list = []
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._frame = threading.Event()
        self._task_success = False
        self._goal_serial = 0
        self._warned: set[str] = set()

        self.timer_group = MutuallyExclusiveCallbackGroup()
        self.control_group = ReentrantCallbackGroup()
        self.sensor_group = ReentrantCallbackGroup()
        self.status_pub = self.create_publisher(PolicyStatus, self.cfg.status_topic, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.path_pub = self.create_publisher(MarkerArray, self.cfg.path_topic, 1)
        self.traj_pub = self.create_publisher(
            JointTrajectory,
            self.cfg.trajectory_topic,
            QoSProfile(depth=self.cfg.qos_depth, reliability=ReliabilityPolicy.RELIABLE),
        )
        cg = self.control_group
        self.create_service(SetEnabled, "/flow_policy/set_enabled", self.on_set_enabled, callback_group=cg)
        self.create_service(Trigger, "/flow_policy/reset", self.on_reset, callback_group=cg)
        self.action = ActionServer(
            self,
            ExecuteCommand,
            "/flow_policy/execute",
            execute_callback=self.execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=cg,
        )
        self.create_timer(1.0 / self.cfg.status_rate_hz, self.publish_status, callback_group=self.timer_group)
        self.create_timer(
            1.0 / self.cfg.diagnostics_rate_hz, self.publish_diagnostics, callback_group=self.timer_group
        )
        if self.cfg.autostart:
            self._autostart = self.create_timer(0.0, self._start_up, callback_group=self.control_group)

    # --- parameters -----------------------------------------------------------------------

    def _declare_config(self) -> PolicyNodeConfig:
        defaults = PolicyNodeConfig()
        hints = typing.get_type_hints(PolicyNodeConfig)
        values = {}
        for f in fields(PolicyNodeConfig):
            value = self.declare_parameter(
                f.name, getattr(defaults, f.name), ParameterDescriptor(dynamic_typing=True)
            ).value
            kind = hints[f.name]
            if kind is float:
                value = float(value)
            elif kind == list[float]:
                value = [float(v) for v in value]
            values[f.name] = value
        return PolicyNodeConfig(**values)

    def _start_up(self) -> None:
        self._autostart.cancel()
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # --- lifecycle ------------------------------------------------------------------------

    def lifecycle_label(self) -> str:
        return self._state_machine.current_state[1]

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        cfg = self.cfg
        problems = cfg.check()
        if problems:
            return self._configure_failed("bad parameters: " + "; ".join(problems))
        try:
            policy, meta = load_for_robot(cfg.checkpoint, cfg.joint_names, cfg.cameras, cfg.device)
        except Exception as exc:  # CheckpointError, but also a corrupt file: say it, stay unconfigured
            return self._configure_failed(str(exc))
        if cfg.torch_threads > 0:
            import torch

            torch.set_num_threads(cfg.torch_threads)
        if cfg.solver:
            policy.cfg.solver = cfg.solver
        if cfg.ode_steps > 0:
            policy.cfg.steps = cfg.ode_steps
        self.policy = policy
        self.joint_names = list(meta["joint_names"])  # the checkpoint's order; messages match by name
        by_name = {n: i for i, n in enumerate(cfg.joint_names)}
        idx = [by_name[n] for n in self.joint_names]
        self.limits = JointLimits(
            tuple(self.joint_names),
            np.array(cfg.joint_lower)[idx],
            np.array(cfg.joint_upper)[idx],
            np.array(cfg.joint_max_velocity)[idx],
        )
        self.cameras = tuple(policy.cfg.encoder.cameras)
        self.image_size = tuple(int(v) for v in meta.get("image_size", (0, 0)))
        self.dt = 1.0 / float(policy.fps)
        self.control_dt = 1.0 / cfg.control_rate_hz if cfg.control_rate_hz > 0 else self.dt
        self.scheduler = ChunkScheduler(
            ChunkingConfig(
                mode=cfg.chunk_blending,
                dt=self.dt,
                execution_horizon=min(cfg.execution_horizon, policy.horizon),
                delay_margin_steps=cfg.delay_margin_steps,
                ensemble_decay=cfg.ensemble_decay,
            ),
            policy.horizon,
        )
        self.cache = ObservationCache(self.cameras, cfg.max_observation_age)
        try:
            embedder = minilm_embedder() if cfg.command_embedding else None
        except Exception as exc:  # the model package is optional: exact commands still work
            self.get_logger().warning(f"sentence embeddings unavailable ({exc}); only exact commands resolve")
            embedder = None
        self.resolver = CommandResolver(policy.tasks, embedder, cfg.command_threshold, cfg.command_margin)
        try:
            from flow_policy_node.kinematics import Kinematics

            self.kinematics = Kinematics()
            self.kinematics.positions(np.zeros(len(self.joint_names)), self.joint_names, cfg.tcp_link)
        except Exception as exc:  # markers are a visual aid: run without them
            self.get_logger().warning(f"no predicted path markers: {exc}")
            self.kinematics = None
        self._warm_up()
        self._create_subscriptions()
        self.last_error = ""
        self.get_logger().info(
            f"configured {cfg.checkpoint}: {len(self.joint_names)} joints, cameras {list(self.cameras)} "
            f"at {self.image_size[1]}x{self.image_size[0]}, horizon {policy.horizon} at {policy.fps:g} Hz, "
            f"{cfg.chunk_blending} chunking, tasks {policy.tasks}"
        )
        if cfg.command:
            self.set_command(cfg.command)
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, message: str) -> TransitionCallbackReturn:
        self.last_error = message
        self.get_logger().error(f"cannot configure: {message}")
        return TransitionCallbackReturn.FAILURE

    def _warm_up(self) -> None:
        """One chunk with and one without a prefix, so the first real chunk is not slow."""
        h, w = self.image_size
        obs = Observation(
            state=np.zeros(len(self.joint_names), np.float32),
            images={c: np.full((h, w, 3), 128, np.uint8) for c in self.cameras},
            task=self.policy.tasks[0],
        )
        chunk = self.policy.predict(obs, seed=0)
        self.policy.predict(obs, prefix=chunk[:2], seed=0)

    def _create_subscriptions(self) -> None:
        cfg = self.cfg
        reliability = (
            ReliabilityPolicy.BEST_EFFORT if cfg.sensor_qos == "best_effort" else ReliabilityPolicy.RELIABLE
        )
        sensor_qos = QoSProfile(depth=cfg.qos_depth, reliability=reliability)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        sg, cg = self.sensor_group, self.control_group
        sub = self.create_subscription
        self._subs = [
            sub(JointState, cfg.joint_state_topic, self.on_joint_state, sensor_qos, callback_group=sg),
            sub(String, cfg.command_topic, self.on_command, 10, callback_group=cg),
            sub(Bool, cfg.task_success_topic, self.on_task_success, 10, callback_group=cg),
            # RViz publishes clicked points volatile, the sim latches its task goal: listen to both.
            sub(PointStamped, cfg.goal_topic, self.on_goal, 10, callback_group=cg),
            # (a volatile publisher such as RViz is incompatible with it: expected, not logged)
            sub(
                PointStamped,
                cfg.goal_topic,
                self.on_goal,
                latched,
                callback_group=cg,
                event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda _event: None),
            ),
        ]
        topics = dict(zip(cfg.cameras, cfg.camera_topics, strict=True))
        for cam in self.cameras:
            topic = topics[cam]
            kind = CompressedImage if topic.rstrip("/").endswith("compressed") else Image
            self._subs.append(
                sub(
                    kind,
                    topic,
                    lambda msg, c=cam, t=topic: self.on_image(c, t, msg),
                    sensor_qos,
                    callback_group=sg,
                )
            )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        self.get_logger().info("active: waiting for a command" if not self.task else f"active: {self.task!r}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        self.hold("deactivated")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs, self.policy, self.resolver = [], None, None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def stop_worker(self) -> None:
        self._stop.set()
        self._frame.set()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None

    def close(self) -> None:
        self.stop_worker()

    # --- sensor callbacks: convert, store, nothing else -----------------------------------

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self, header) -> float:
        t = stamp_to_sec(header.stamp)
        return t if t > 0 else self.now()  # unstamped drivers: treat as "just now"

    def on_joint_state(self, msg: JointState) -> None:
        try:
            self.cache.put(JOINTS, joint_positions(msg, self.joint_names), self._stamp(msg.header))
        except Exception as exc:  # ConversionError and anything unforeseen: hold, never crash the executor
            self.cache.put_error(JOINTS, f"{self.cfg.joint_state_topic}: {exc}")
        if self.cache.primary == JOINTS:
            self._frame.set()

    def on_image(self, camera: str, topic: str, msg) -> None:
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
            h, w = rgb.shape[:2]
            if (h, w) != self.image_size:
                problem = image_size_problem(h, w, self.image_size, self.cfg.max_aspect_change)
                if problem:
                    raise ConversionError(problem)
                self.log_once(
                    f"resize {camera} {w}x{h}",
                    f"{topic}: resizing {w}x{h} images to the checkpoint's {self.image_size[1]}x"
                    f"{self.image_size[0]} (same aspect ratio within max_aspect_change)",
                    warn=False,
                )
                rgb = resize_rgb(rgb, self.image_size)
            if not rgb.flags.writeable:  # a view of the message buffer: torch wants its own copy
                rgb = rgb.copy()
            self.cache.put(camera, rgb, self._stamp(msg.header))
        except Exception as exc:  # ConversionError and anything unforeseen: hold, never crash the executor
            self.cache.put_error(camera, f"{topic}: {exc}")
        if camera == self.cache.primary:
            self._frame.set()

    # --- commands -------------------------------------------------------------------------

    def set_command(self, text: str) -> Resolution:
        """Resolve ``text``; on success run that task, otherwise hold and say why."""
        if self.resolver is None:
            res = Resolution(
                None, "refused", message=f"not configured ({self.last_error or 'no checkpoint'})"
            )
        else:
            res = self.resolver.resolve(text)
        if res.task is None:
            self.hold(f"command refused: {res.message}")
            with self._lock:
                self.task = ""
                self.last_error = f"command refused: {res.message}"
            self.get_logger().warning(self.last_error)
        else:
            with self._lock:
                self.task = res.task
                self.last_error = ""
                self.chunks_since_command = 0
            self.get_logger().info(f"command: {res.message}")
            self._frame.set()
        return res

    def on_command(self, msg: String) -> None:
        self.set_command(msg.data)

    def on_goal(self, msg: PointStamped) -> None:
        frame = msg.header.frame_id
        if frame and frame != self.cfg.base_frame:
            self.last_error = f"goal in frame {frame!r} ignored: goals must be in {self.cfg.base_frame!r}"
            self.log_once(self.last_error, self.last_error)
            return
        p = np.array([msg.point.x, msg.point.y, msg.point.z], np.float32)
        if not np.all(np.isfinite(p)):
            self.last_error = "goal with non-finite coordinates ignored"
            return
        self.cache.goal = p

    def on_task_success(self, msg: Bool) -> None:
        if msg.data:
            self._task_success = True

    def on_set_enabled(self, request: SetEnabled.Request, response: SetEnabled.Response):
        with self._lock:
            self.enabled = bool(request.enabled)
        if not self.enabled:
            self.hold("disabled")
        else:
            self._frame.set()
        response.success = True
        response.message = "enabled" if self.enabled else "disabled: holding"
        return response

    def on_reset(self, request: Trigger.Request, response: Trigger.Response):
        self.hold("reset")
        with self._lock:
            self.task, self.last_error = "", ""
            self.chunks_since_command = 0
            if self.cache is not None:
                self.cache.goal = None
        response.success, response.message = True, "reset: holding, command and goal cleared"
        return response

    def execute(self, goal_handle):
        """ExecuteCommand: run until /sim/task_success, the timeout, a cancel or a newer goal."""
        req = goal_handle.request
        result = ExecuteCommand.Result()
        self._goal_serial += 1
        serial = self._goal_serial
        if self.lifecycle_label() != "active":
            goal_handle.abort()
            result.message = f"node is {self.lifecycle_label()}, not active: {self.last_error}"
            return result
        res = self.set_command(req.command)
        result.resolved_task = res.task or ""
        if res.task is None:
            goal_handle.abort()
            result.message = res.message
            return result
        self._task_success = False
        # Elapsed time on the node's clock: simulated seconds under use_sim_time, so a
        # simulator running slower than real time does not eat into the timeout.
        clock = self.get_clock()
        start, first_chunk = clock.now(), self.chunk_id
        feedback = ExecuteCommand.Feedback(resolved_task=res.task)
        while True:
            elapsed = (clock.now() - start).nanoseconds / 1e9
            result.elapsed_s, result.chunks = elapsed, self.chunk_id - first_chunk
            if goal_handle.is_cancel_requested:
                self._finish("goal canceled")
                goal_handle.canceled()
                result.message = "canceled: holding"
                return result
            if serial != self._goal_serial or self.task != res.task:
                goal_handle.abort()
                result.message = "preempted: a newer goal, command or reset replaced this one"
                return result
            if self._task_success:
                self._finish("task succeeded")
                goal_handle.succeed()
                result.success, result.message = True, f"{res.task!r} succeeded after {elapsed:.1f} s"
                return result
            if req.timeout_s > 0 and elapsed > req.timeout_s:
                self._finish("goal timed out")
                goal_handle.abort()
                result.message = f"timed out after {req.timeout_s:.1f} s without task success"
                return result
            feedback.progress = min(1.0, elapsed / req.timeout_s) if req.timeout_s > 0 else 0.0
            feedback.chunks, feedback.state = result.chunks, self.state()
            goal_handle.publish_feedback(feedback)
            time.sleep(0.1)

    def _finish(self, why: str) -> None:
        self.hold(why)
        with self._lock:
            self.task = ""

    # --- inference worker -----------------------------------------------------------------

    def _work(self) -> None:
        last_frame = -1
        while not self._stop.is_set():
            self._frame.wait(timeout=0.05)
            self._frame.clear()
            if self._stop.is_set():
                break
            try:
                last_frame = self._step(last_frame)
            except Exception as exc:  # never let the worker die silently: hold and report
                self.hold(f"inference failed: {type(exc).__name__}: {exc}")
                self.last_error = f"inference failed: {exc}"

    def _step(self, last_frame: int) -> int:
        with self._lock:
            enabled, task = self.enabled, self.task
        if not enabled or not task:
            return last_frame
        now = self.now()
        obs, _, problem = self.cache.snapshot(now)
        if problem:
            self.hold(problem, kind="observations")
            return last_frame
        frame = self.cache.count(self.cache.primary)
        if frame == last_frame or not self.scheduler.due(now):
            return last_frame  # wait for a fresh frame: the newest observation, not a repeat
        obs.task = task
        prefix = self.scheduler.prefix(obs.stamp)
        seed = None if self.cfg.seed < 0 else self.cfg.seed + self.chunks_since_command
        t0 = time.perf_counter()
        self.inferring = True
        try:
            chunk = self.policy.predict(obs, prefix=prefix, seed=seed)
        finally:
            self.inferring = False
        self.inference_ms = (time.perf_counter() - t0) * 1e3
        now = self.now()
        self.scheduler.record_delay(now - obs.stamp)
        # Without a plan (first chunk, after a hold) start from the measured state: the arm
        # may have been moved since (a sim reset, a person), so an old target would be wrong.
        current = obs.state.astype(np.float64)
        segment = self.scheduler.schedule(chunk, obs.stamp, now, current)
        if segment is None:
            self.hold(f"inference took {self.inference_ms:.0f} ms, longer than a whole chunk")
            return frame
        try:
            segment.positions, report = limit_chunk(segment.positions, segment.start, self.dt, self.limits)
        except UnsafeChunk as exc:
            self.hold(f"unsafe chunk not published: {exc}")
            return frame
        if report.clamped or report.rate_limited:
            self.log_once(
                "limited",
                "policy targets were limited (position clamp or velocity cap); see diagnostics",
            )
        with self._lock:
            if not self.enabled or self.task != task or self._stop.is_set():
                return frame  # disabled, reset or re-commanded while inferring: drop it
            self.scheduler.commit(segment, now)
            self.chunk_id += 1
            self.chunks_since_command += 1
            self._publish(segment)
            if self.holding_reason:
                self.get_logger().info(f"resuming after: {self.holding_reason}")
            self.holding_reason = ""
        return frame

    def _publish(self, seg: Segment) -> None:
        positions = seg.positions
        if abs(self.control_dt - self.dt) > 1e-9:  # resample onto the control grid
            src_t = self.dt * np.arange(len(positions) + 1)
            dst_t = np.arange(self.control_dt, src_t[-1] + 1e-9, self.control_dt)
            full = np.vstack([seg.start[None], positions])
            positions = np.stack([np.interp(dst_t, src_t, full[:, j]) for j in range(full.shape[1])], axis=1)
        vel = velocities(seg.start, positions, self.control_dt)
        msg = trajectory_msg(self.joint_names, positions, self.control_dt, sec_to_stamp(seg.stamp), vel)
        self.traj_pub.publish(msg)
        if self.kinematics is not None and self.path_pub.get_subscription_count() > 0:
            self._publish_path(np.vstack([seg.start[None], positions]))

    def _publish_path(self, q: np.ndarray) -> None:
        pts = self.kinematics.positions(q, self.joint_names, self.cfg.tcp_link)
        line = Marker(ns="predicted_path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
        line.header.frame_id, line.header.stamp = self.cfg.base_frame, self.get_clock().now().to_msg()
        line.scale.x = 0.005
        line.color = ColorRGBA(r=0.1, g=0.8, b=1.0, a=0.9)
        line.pose.orientation.w = 1.0
        line.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pts]
        dots = Marker(ns="predicted_path", id=1, type=Marker.SPHERE_LIST, action=Marker.ADD)
        dots.header, dots.points, dots.pose.orientation.w = line.header, line.points, 1.0
        dots.scale.x = dots.scale.y = dots.scale.z = 0.012
        dots.color = ColorRGBA(r=1.0, g=0.6, b=0.1, a=0.9)
        self.path_pub.publish(MarkerArray(markers=[line, dots]))

    def hold(self, reason: str, kind: str = "") -> None:
        """Stop where the controller is now, forget the plan, report why.

        Repeated holds of the same ``kind`` (default: the reason itself) only update the
        reason shown in the status: one log line and one hold trajectory per episode.
        """
        kind = kind or reason
        with self._lock:
            if self.holding_reason and kind == self._holding_kind:
                self.holding_reason = reason
                return
            self.holding_reason, self._holding_kind = reason, kind
            self.get_logger().warning(f"holding: {reason}")
            sched = self.scheduler
            if sched is None:
                return
            if sched.has_plan:
                now = self.now()
                target = sched.committed(np.array([now]))[0]
                msg = trajectory_msg(
                    self.joint_names,
                    target[None],
                    self.control_dt,
                    sec_to_stamp(now),
                    np.zeros((1, len(target))),
                )
                self.traj_pub.publish(msg)
            sched.reset()

    # --- status ---------------------------------------------------------------------------

    def state(self) -> str:
        label = self.lifecycle_label()
        if not self.enabled:
            return PolicyStatus.STATE_DISABLED
        if label in ("unconfigured", "configuring", "finalized"):
            return PolicyStatus.STATE_UNCONFIGURED
        if label != "active" or not self.task:
            return PolicyStatus.STATE_IDLE
        if self.holding_reason:
            return PolicyStatus.STATE_HOLDING
        return PolicyStatus.STATE_RUNNING

    def observation_age(self) -> float:
        if self.cache is None:
            return -1.0
        return float(self.cache.snapshot(self.now())[1])

    def publish_status(self) -> None:
        msg = PolicyStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.state = self.state()
        msg.command = self.task
        msg.chunk_id = self.chunk_id
        msg.inference_ms = float(self.inference_ms)
        msg.observation_age_s = self.observation_age()
        msg.enabled = self.enabled
        msg.last_error = self.last_error or (
            self.holding_reason if msg.state == PolicyStatus.STATE_HOLDING else ""
        )
        self.status_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        state = self.state()
        status = DiagnosticStatus(name="flow_policy_node: policy", hardware_id=self.cfg.checkpoint or "none")
        if self.last_error or state == PolicyStatus.STATE_UNCONFIGURED:
            status.level, status.message = DiagnosticStatus.ERROR, self.last_error or "not configured"
        elif state == PolicyStatus.STATE_HOLDING:
            status.level, status.message = DiagnosticStatus.WARN, f"holding: {self.holding_reason}"
        else:
            status.level, status.message = DiagnosticStatus.OK, state
        delay = self.scheduler.delay_estimate if self.scheduler else 0.0
        values = {
            "state": state,
            "command": self.task,
            "chunk_id": self.chunk_id,
            "inference_ms": f"{self.inference_ms:.1f}",
            "delay_estimate_s": f"{delay:.3f}",
            "observation_age_s": f"{self.observation_age():.3f}",
            "chunk_blending": self.cfg.chunk_blending,
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)

    def log_once(self, key: str, text: str, warn: bool = True) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        # rclpy pins one severity per call site: one call per severity.
        if warn:
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)
