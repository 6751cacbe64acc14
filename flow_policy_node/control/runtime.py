"""The policy node's decisions, without ROS: what to run, when, and when to hold.

:class:`PolicyRuntime` owns the observation cache, command resolution, chunk scheduling,
the safety limits, hold reasons and timing figures. The ROS node feeds it (``put_*``,
``command``, ``set_enabled``, ``reset``, the goal calls of its ExecuteCommand action),
starts and stops its inference thread, and turns what comes out through the :class:`Sink`
into messages. Unit tests call :meth:`PolicyRuntime.step` and :meth:`PolicyRuntime.goal_step`
themselves, with a fake clock and a recording sink.

Timing: a chunk covers ``execution_horizon`` control steps before the next one takes
over, so inference has that long (the *budget*) from observation to published chunk. A
chunk that takes longer is *late*: the robot has run past its takeover point on the old
plan. Late chunks are counted and reported, not hidden.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from flow_policy_node.control.chunking import ChunkingConfig, ChunkScheduler, Segment
from flow_policy_node.control.commands import LOADING, UNAVAILABLE, CommandResolver, Resolution
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.jtc import interp
from flow_policy_node.control.observations import JOINTS, ObservationCache
from flow_policy_node.control.safety import JointLimits, UnsafeChunk, limit_chunk, velocities
from flow_policy_node.images import resize_rgb, size_problem
from flow_policy_node.observation import Observation

# PolicyStatus states (flow_policy_msgs/msg/PolicyStatus), as plain strings: no ROS here.
UNCONFIGURED, IDLE, RUNNING, HOLDING, DISABLED = "unconfigured", "idle", "running", "holding", "disabled"
PREEMPTED = "preempted: a newer goal, command or reset replaced this one"


@dataclass
class Trajectory:
    """What to publish: ``positions[k]`` at ``stamp + (k + 1) dt``; ``dt`` is the control period.

    positions, velocities: (M, D) in ``PolicyRuntime.joint_names`` order.
    """

    stamp: float
    dt: float
    positions: np.ndarray
    velocities: np.ndarray
    start: np.ndarray  # (D,) the target at ``stamp``


class Sink(Protocol):
    """Where the runtime's outputs go (the node: messages; tests: lists)."""

    def publish(self, trajectory: Trajectory) -> None: ...

    def log(self, level: str, text: str) -> None: ...


@dataclass
class GoalOutcome:
    """How a goal ended; ``elapsed_s`` on the runtime's clock, ``chunks`` published meanwhile."""

    success: bool
    message: str
    elapsed_s: float
    chunks: int


@dataclass
class GoalProgress:
    task: str
    progress: float  # elapsed / timeout in [0, 1]; 0 without a timeout
    chunks: int


@dataclass
class _Goal:
    task: str
    start: float
    timeout: float  # <= 0: none
    first_chunk: int
    done: Callable[[GoalOutcome], None]


@dataclass
class Timing:
    """Figures of the last chunk (ms) and counts since configure."""

    inference_ms: float = 0.0  # policy.predict wall time
    delay_ms: float = 0.0  # observation stamp -> chunk ready, on the node's clock
    budget_ms: float = 0.0  # execution_horizon control steps
    chunks: int = 0
    late_chunks: int = 0


class PolicyRuntime:
    """Observation in, trajectories out; one instance per configured checkpoint.

    policy: a FlowPolicy (``predict(obs, prefix, seed)``, ``horizon``, ``fps``, ``tasks``).
    joint_names: the checkpoint's joint order; ``limits`` in that order.
    clock: seconds on the node's clock (sim time under use_sim_time).
    """

    def __init__(
        self,
        policy,
        joint_names: list[str],
        limits: JointLimits,
        image_size: tuple[int, int],
        cfg: PolicyNodeConfig,
        resolver: CommandResolver,
        sink: Sink,
        clock: Callable[[], float],
    ) -> None:
        self.policy, self.cfg, self.resolver, self.sink, self.clock = policy, cfg, resolver, sink, clock
        self.joint_names, self.limits, self.image_size = list(joint_names), limits, tuple(image_size)
        self.cameras = tuple(policy.cfg.encoder.cameras)
        self.dt = 1.0 / float(policy.fps)
        self.control_dt = 1.0 / cfg.control_rate_hz if cfg.control_rate_hz > 0 else self.dt
        horizon = min(cfg.execution_horizon, policy.horizon)
        self.scheduler = ChunkScheduler(
            ChunkingConfig(
                mode=cfg.chunk_blending,
                dt=self.dt,
                execution_horizon=horizon,
                delay_margin_steps=cfg.delay_margin_steps,
                ensemble_decay=cfg.ensemble_decay,
            ),
            policy.horizon,
        )
        self.cache = ObservationCache(self.cameras, cfg.max_observation_age)
        self.timing = Timing(budget_ms=1e3 * horizon * self.dt)
        self._lock = threading.RLock()
        self.enabled = True
        self.task = ""  # resolved task text ("" = no command: no motion)
        self.chunk_id = 0
        self.chunks_since_command = 0  # seeds restart with each command or reset
        # Counts commands, resets and stops: a chunk is published only if none came while it
        # was inferred. The task alone does not tell: the same command again after a reset
        # (the next episode) would let the last episode's chunk through, from its old pose.
        self.epoch = 0
        self._commanded_at = -1e18  # node clock when the running task was commanded
        self.inferring = False
        self.last_error = ""
        self.holding_reason = ""
        self._holding_kind = ""
        self._last_frame = -1
        self._logged: set[str] = set()
        self._late_logged_at = -1e9
        self.kinematics = None  # forward kinematics for drawing the predicted path (optional)
        self._waiting_command = ""  # free text given before the language model was ready
        self.active_goal: _Goal | None = None  # the ExecuteCommand goal being run, if any
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        resolver.when_loaded(self._language_model_loaded)

    # --- inputs -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Commanded and enabled: new observations should wake the inference thread."""
        return self.enabled and bool(self.task)

    @property
    def idle(self) -> bool:
        """No goal and no task: nothing needs a sensor message the moment it arrives."""
        return self.active_goal is None and not self.running

    def _observed(self, stream: str) -> None:
        if stream == self.cache.primary and self.running:
            self._wake.set()

    def put_joints(self, positions: np.ndarray, stamp: float) -> None:
        self.cache.put(JOINTS, positions, stamp)
        self._observed(JOINTS)

    def put_image(self, camera: str, rgb: np.ndarray, stamp: float, source: str) -> None:
        """Store an (h, w, 3) uint8 frame, resized to the model's size when the aspect allows."""
        h, w = rgb.shape[:2]
        if (h, w) != self.image_size:
            problem = size_problem(h, w, self.image_size, self.cfg.max_aspect_change)
            if problem:
                raise ValueError(problem)
            self.log_once(
                f"resize {camera} {w}x{h}",
                f"{source}: resizing {w}x{h} images to the checkpoint's {self.image_size[1]}x"
                f"{self.image_size[0]} (same aspect ratio within max_aspect_change)",
                "info",
            )
            rgb = resize_rgb(rgb, self.image_size)
        if not rgb.flags.writeable:  # a view of the message buffer: torch wants its own copy
            rgb = rgb.copy()
        self.cache.put(camera, rgb, stamp)
        self._observed(camera)

    def put_error(self, stream: str, error: str) -> None:
        """The newest message on ``stream`` could not be used: hold, saying ``error``."""
        self.cache.put_error(stream, error)
        self._observed(stream)

    def set_goal(self, point: np.ndarray, frame: str) -> str:
        """Use ``point`` (base frame) as the goal; returns why not ("" when accepted)."""
        if frame and frame != self.cfg.base_frame:
            self.last_error = f"goal in frame {frame!r} ignored: goals must be in {self.cfg.base_frame!r}"
            self.log_once(self.last_error, self.last_error)
            return self.last_error
        point = np.asarray(point, np.float32)
        if not np.all(np.isfinite(point)):
            self.last_error = "goal with non-finite coordinates ignored"
            return self.last_error
        self.cache.goal = point
        return ""

    def command(self, text: str, wait_for_model: bool = False) -> Resolution:
        """Resolve ``text``; on success run that task, otherwise hold and say why.

        wait_for_model: free text that comes before the language model is loaded runs once
        it is, unless another command or a reset comes first (the node's initial
        ``command`` parameter: configure does not wait for the model). A goal being run is
        preempted, whether the command resolves or not.
        """
        self._end_goal(False, PREEMPTED)
        res = self.resolver.resolve(text)
        waiting = wait_for_model and res.how == "loading"
        with self._lock:
            self._waiting_command = text if waiting else ""
        if waiting:
            self.sink.log("info", f"command {text!r} waits for the language model (free text)")
            if self.resolver.free_text != LOADING:  # it loaded since resolve(): its callback may have run
                self._run_waiting_command()
            return res
        if res.task is None:
            self.hold(f"command refused: {res.message}")
            with self._lock:
                self.task, self.epoch = "", self.epoch + 1
                self.last_error = f"command refused: {res.message}"
            self.sink.log("warn", self.last_error)
        else:
            with self._lock:
                self.task, self.last_error, self.chunks_since_command = res.task, "", 0
                self.epoch, self._commanded_at = self.epoch + 1, self.clock()
            self.sink.log("info", f"command: {res.message}")
            self._wake.set()  # run on the newest frame now, not on the next one
        return res

    def _language_model_loaded(self, resolver: CommandResolver) -> None:
        """Called once loading ends (on the loader's thread): say so, run a waiting command."""
        if resolver.free_text == UNAVAILABLE:
            self.sink.log(
                "warn", f"free-text commands {resolver.free_text_status()}; only exact commands resolve"
            )
        else:
            self.sink.log("info", f"free-text commands {resolver.free_text_status()}")
        self._run_waiting_command()

    def _run_waiting_command(self) -> None:
        with self._lock:  # taken from here: whichever thread comes first runs it, once
            text, self._waiting_command = self._waiting_command, ""
        if text:
            self.command(text)

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self.enabled = bool(enabled)
            self.epoch += 0 if enabled else 1
        self._wake.set()
        if not enabled:
            self.hold("disabled")

    def reset(self) -> None:
        """Hold, forget the command and the goal point; a goal being run is preempted."""
        self._end_goal(False, PREEMPTED)
        self.hold("reset")
        with self._lock:
            self.task, self.last_error, self.chunks_since_command = "", "", 0
            self.epoch += 1
            self._waiting_command = ""
            self.cache.goal = None

    def stop(self, why: str) -> None:
        """The task ended (success, timeout, cancel): hold and wait for the next command."""
        self.hold(why)
        with self._lock:
            self.task, self.epoch = "", self.epoch + 1

    # --- goals: the node's ExecuteCommand action, one at a time -------------------------------

    def start_goal(self, text: str, timeout: float, done: Callable[[GoalOutcome], None]) -> Resolution:
        """Run ``text`` until the task succeeds, ``timeout`` s pass (<= 0: never), or the goal
        is canceled or preempted; ``done`` gets the outcome, once. A command that does not
        resolve starts no goal (the resolution says why)."""
        res = self.command(text)
        if res.task is not None:
            with self._lock:
                self.active_goal = _Goal(res.task, self.clock(), timeout, self.chunk_id, done)
        return res

    def goal_step(self) -> GoalProgress | None:
        """Time the goal out (on the runtime's clock, so simulated seconds under sim time);
        its progress while it runs, None when there is none."""
        goal, now = self.active_goal, self.clock()
        if goal is None:
            return None
        elapsed = now - goal.start
        if goal.timeout > 0 and elapsed > goal.timeout:
            self._end_goal(
                False, f"timed out after {goal.timeout:.1f} s without task success", "goal timed out"
            )
            return None
        progress = min(1.0, elapsed / goal.timeout) if goal.timeout > 0 else 0.0
        return GoalProgress(goal.task, progress, self.chunk_id - goal.first_chunk)

    def task_succeeded(self) -> None:
        """The robot reports success: the goal, if any, succeeds and the arm holds."""
        goal = self.active_goal
        if goal is not None:
            elapsed = self.clock() - goal.start
            self._end_goal(True, f"{goal.task!r} succeeded after {elapsed:.1f} s", "task succeeded")

    def abort_goal(self, message: str, hold: str) -> None:
        """End the goal, if any, unsuccessfully (canceled, node deactivated) and hold, saying ``hold``."""
        self._end_goal(False, message, hold)

    def _end_goal(self, success: bool, message: str, hold: str = "") -> None:
        """Resolve the goal; ``hold``: also stop the task and hold the arm, saying why."""
        with self._lock:
            goal, self.active_goal = self.active_goal, None
        if goal is None:
            return
        if hold:
            self.stop(hold)
        goal.done(GoalOutcome(success, message, self.clock() - goal.start, self.chunk_id - goal.first_chunk))

    # --- the inference thread -----------------------------------------------------------------

    def start_inference(self) -> None:
        """Start the thread that runs :meth:`step` on each fresh primary frame (the node: activate)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._infer, name="inference", daemon=True)
        self._thread.start()

    def stop_inference(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _infer(self) -> None:
        # torch's intra-op thread count is an OpenMP setting of the calling thread: set on the
        # executor's thread at configure, it left this thread on the default (one per core),
        # and on 2 busy cores each chunk took twice its offline time.
        if self.cfg.torch_threads > 0:
            import torch

            torch.set_num_threads(self.cfg.torch_threads)
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)  # also re-checks staleness when frames stop coming
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.step()
            except Exception as exc:  # never let the thread die silently: hold and report
                self.last_error = f"inference failed: {exc}"
                self.hold(f"inference failed: {type(exc).__name__}: {exc}")

    # --- the inference thread's step ----------------------------------------------------------

    def step(self) -> bool:
        """Predict and publish the next chunk if one is due; True when a chunk went out."""
        with self._lock:
            enabled, task, epoch, commanded_at = self.enabled, self.task, self.epoch, self._commanded_at
        if not enabled or not task:
            return False
        now = self.clock()
        obs, age, problem = self.cache.snapshot(now)
        if problem:
            self.hold(problem, kind="observations")
            return False
        if now - age <= commanded_at + 1e-9:
            # A command acts on frames taken after it: those before may show the last episode
            # (a reset moved the arm and the objects a few ms ago) and would start the new
            # plan from the old pose. Costs at most one frame period.
            return False
        frame = self.cache.count(self.cache.primary)
        if frame == self._last_frame or not self.scheduler.due(now):
            return False  # wait for a fresh frame: the newest observation, not a repeat
        self._last_frame = frame
        try:
            segment = self._predict(obs, task)
        except UnsafeChunk as exc:
            self.hold(f"unsafe chunk not published: {exc}")
            return False
        if segment is None:
            return False
        with self._lock:
            if not self.enabled or self.epoch != epoch:
                return False  # disabled, reset, stopped or re-commanded while inferring: drop it
            self.scheduler.commit(segment, self.clock())
            self.chunk_id += 1
            self.chunks_since_command += 1
            self.sink.publish(self._trajectory(segment))
            if self.holding_reason:
                self.sink.log("info", f"resuming after: {self.holding_reason}")
            self.holding_reason = ""
        return True

    def _predict(self, obs: Observation, task: str) -> Segment | None:
        obs.task = task
        prefix = self.scheduler.prefix(obs.stamp)
        seed = None if self.cfg.seed < 0 else self.cfg.seed + self.chunks_since_command
        t0 = time.perf_counter()
        self.inferring = True
        try:
            chunk = self.policy.predict(obs, prefix=prefix, seed=seed)
        finally:
            self.inferring = False
        inference_s = time.perf_counter() - t0
        if self.cfg.inject_delay_ms > 0:  # benchmarks: a slower policy, reproducibly
            while self.clock() < obs.stamp + self.cfg.inject_delay_ms / 1e3:
                time.sleep(0.002)
        now = self.clock()
        self._account(inference_s, now - obs.stamp)
        self.scheduler.record_delay(now - obs.stamp)
        # Without a plan (first chunk, after a hold) start from the measured state: the arm
        # may have been moved since (a sim reset, a person), so an old target would be wrong.
        segment = self.scheduler.schedule(
            chunk, obs.stamp, now, obs.state.astype(np.float64), 0 if prefix is None else len(prefix)
        )
        if segment is None:
            self.hold(f"inference took {self.timing.inference_ms:.0f} ms, longer than a whole chunk")
            return None
        segment.positions, report = limit_chunk(segment.positions, segment.start, self.dt, self.limits)
        if report.clamped or report.rate_limited:
            self.log_once(
                "limited", "policy targets were limited (position clamp or velocity cap); see diagnostics"
            )
        return segment

    def _account(self, inference_s: float, delay_s: float) -> None:
        t = self.timing
        t.inference_ms, t.delay_ms = 1e3 * inference_s, 1e3 * delay_s
        t.chunks += 1
        if t.delay_ms > t.budget_ms:
            t.late_chunks += 1
            wall = time.monotonic()
            if wall - self._late_logged_at > 5.0:  # a slow machine: say so, but not 10 times a second
                self._late_logged_at = wall
                self.sink.log(
                    "warn",
                    f"chunk late: {t.delay_ms:.0f} ms from observation to chunk (inference "
                    f"{t.inference_ms:.0f} ms) against a budget of {t.budget_ms:.0f} ms "
                    f"({t.late_chunks} of {t.chunks} late); the CPU is too busy or the policy too slow",
                )

    def _trajectory(self, seg: Segment) -> Trajectory:
        positions = seg.positions
        if abs(self.control_dt - self.dt) > 1e-9:  # resample onto the control grid
            src_t = self.dt * np.arange(len(positions) + 1)
            dst_t = np.arange(self.control_dt, src_t[-1] + 1e-9, self.control_dt)
            full = np.vstack([seg.start[None], positions])
            positions = interp(dst_t, src_t, full)
        vel = velocities(seg.start, positions, self.control_dt)
        return Trajectory(seg.stamp, self.control_dt, positions, vel, seg.start)

    # --- holding and status -------------------------------------------------------------------

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
            self.sink.log("warn", f"holding: {reason}")
            if self.scheduler.has_plan:
                now = self.clock()
                target = self.scheduler.committed(np.array([now]))[0]
                zero = np.zeros((1, len(target)))
                self.sink.publish(Trajectory(now, self.control_dt, target[None], zero, target))
            self.scheduler.reset()

    def state(self) -> str:
        if not self.enabled:
            return DISABLED
        if not self.task:
            return IDLE
        return HOLDING if self.holding_reason else RUNNING

    def tcp_path(self, traj: Trajectory) -> np.ndarray | None:
        """The tool's positions (N, 3) along ``traj`` from its start, for drawing; None
        without kinematics or for a hold."""
        if self.kinematics is None or len(traj.positions) < 2:
            return None
        q = np.vstack([traj.start[None], traj.positions])
        return self.kinematics.positions(q, self.joint_names, self.cfg.tcp_link)

    def observation_age(self) -> float:
        return float(self.cache.snapshot(self.clock())[1])

    def describe(self) -> str:
        p = self.policy
        return (
            f"{len(self.joint_names)} joints, cameras {list(self.cameras)} at {self.image_size[1]}x"
            f"{self.image_size[0]}, horizon {p.horizon} at {p.fps:g} Hz, {self.cfg.chunk_blending} "
            f"chunking, tasks {p.tasks}"
        )

    def log_once(self, key: str, text: str, level: str = "warn") -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.sink.log(level, text)
