"""Closed-loop evaluation of any Policy in the simulator, without ROS.

Two ways to run a policy:

- receding horizon (default): predict an (H, D) chunk, execute its first
  ``n_action_steps`` at the control rate, re-plan from the new observation;
- chunked as the policy node runs it (``EvalConfig.chunking``): the node's ChunkScheduler
  decides when to infer and how each chunk joins the plan (rtc, ensemble, naive), the
  node's safety limits apply, and inference takes ``delay_ms`` of simulated time while the
  arm goes on executing the plan. benchmarks/delay.py asks the same question through ROS
  in real time; this answers it in seconds, and a gap between the two is the graph's.

Reports success rate, time to success and smoothness (RMS jerk of the executed joint
trajectory, rad/s^3), and plots example trajectories.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from flow_policy_node.control.chunking import ChunkingConfig, ChunkScheduler
from flow_policy_node.control.safety import JointLimits, limit_chunk
from flow_policy_node.observation import Policy
from flow_policy_node.sim.env import ArmEnv, SimConfig


@dataclass
class EvalConfig:
    tasks: tuple[str, ...] = ("pick_red",)
    episodes: int = 10
    seed: int = 1000  # evaluation seeds start here, away from the demo seeds
    n_action_steps: int = 8
    max_seconds: float = 10.0
    # Chunks joined as the policy node joins them (dt comes from the env's fps), inference
    # taking delay_ms of simulated time. None: receding horizon.
    chunking: ChunkingConfig | None = None
    delay_ms: float = 0.0


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    time_to_success: float | None
    rms_jerk: float
    chunk_ms: list[float]
    joints: list[list[float]] = field(repr=False)


@dataclass
class TaskReport:
    success_rate: float
    mean_time_to_success: float | None
    rms_jerk: float
    chunk_ms_p50: float
    episodes: list[EpisodeResult] = field(repr=False)


def rms_jerk(q: np.ndarray, dt: float) -> float:
    """RMS over time and joints of the third finite difference of joint positions (T, D)."""
    if len(q) < 4:
        return 0.0
    jerk = np.diff(q[:, :6], n=3, axis=0) / dt**3
    return float(np.sqrt((jerk**2).mean()))


def run_episode(env: ArmEnv, policy: Policy, task: str, seed: int, cfg: EvalConfig) -> EpisodeResult:
    obs = env.reset(task, seed)
    start, dt = env.time, 1.0 / env.config.fps
    joints, chunk_ms = [env.joint_positions()], []
    steps = int(cfg.max_seconds / dt)
    if cfg.chunking is not None:
        _run_chunked(env, policy, obs, seed, cfg, steps, joints, chunk_ms)
    while cfg.chunking is None and len(joints) <= steps and not env.success():
        t0 = time.perf_counter()
        chunk = policy.predict(obs, seed=seed * 1000 + len(joints))
        chunk_ms.append((time.perf_counter() - t0) * 1000)
        for action in chunk[: cfg.n_action_steps]:
            obs = env.step(action)
            joints.append(env.joint_positions())
            if env.success():
                break
    st = env.state
    return EpisodeResult(
        task,
        seed,
        env.success(),
        None if st.succeeded_at is None else st.succeeded_at - start,
        rms_jerk(np.array(joints), dt),
        chunk_ms,
        np.array(joints).round(5).tolist(),
    )


def _run_chunked(env: ArmEnv, policy, obs, seed: int, cfg: EvalConfig, steps: int, joints, chunk_ms) -> None:
    """The policy node's loop (control/runtime.py) in simulated time, appending to ``joints``
    and ``chunk_ms``: at each control step a chunk is inferred if the scheduler says one is
    due; it is ready ``delay_ms`` later, joins the plan, is made safe, and the arm executes
    the plan throughout (held where it is before the first chunk)."""
    assert cfg.chunking is not None
    dt = 1.0 / env.config.fps
    sched = ChunkScheduler(replace(cfg.chunking, dt=dt), policy.horizon)
    arm = env.arm
    limits = JointLimits(
        tuple(arm.joint_names), np.array(arm.lower()), np.array(arm.upper()), np.array(arm.max_velocity())
    )
    t, pending = 0.0, None
    while len(joints) <= steps and not env.success():
        if pending is None and sched.due(t):
            prefix = sched.prefix(t)
            t0 = time.perf_counter()
            chunk = policy.predict(obs, prefix=prefix, seed=seed * 1000 + len(joints))
            chunk_ms.append((time.perf_counter() - t0) * 1000)
            k = 0 if prefix is None else len(prefix)
            pending = (chunk, t, t + cfg.delay_ms / 1e3, obs.state.astype(np.float64), k)
        # Ready before the next step: it takes over at a step boundary (its stamp) after then.
        if pending is not None and pending[2] <= t + dt - 1e-9:
            chunk, t_obs, ready, state, k = pending
            pending = None
            sched.record_delay(ready - t_obs)
            segment = sched.schedule(chunk, t_obs, ready, state, k)
            if segment is not None:
                segment.positions, _ = limit_chunk(segment.positions, segment.start, dt, limits)
                sched.commit(segment, ready)
        action = sched.committed(np.array([t + dt]))[0] if sched.has_plan else env.joint_targets()
        obs = env.step(action)
        joints.append(env.joint_positions())
        t += dt


def evaluate(
    policy: Policy,
    cfg: EvalConfig,
    sim: SimConfig | None = None,
    progress: bool = True,
    env: ArmEnv | None = None,
) -> dict[str, TaskReport]:
    """Run ``cfg.episodes`` seeded episodes per task; ``env`` (closed afterwards) or a new one."""
    env = env or ArmEnv(sim)
    reports: dict[str, TaskReport] = {}
    try:
        for task in cfg.tasks:
            seeds = range(cfg.seed, cfg.seed + cfg.episodes)
            results = [
                run_episode(env, policy, task, s, cfg)
                for s in tqdm(seeds, desc=f"eval {task}", disable=not progress, leave=False)
            ]
            times = [r.time_to_success for r in results if r.success]
            reports[task] = TaskReport(
                success_rate=float(np.mean([r.success for r in results])),
                mean_time_to_success=float(np.mean(times)) if times else None,
                rms_jerk=float(np.mean([r.rms_jerk for r in results])),
                chunk_ms_p50=float(np.median([m for r in results for m in r.chunk_ms])),
                episodes=results,
            )
    finally:
        env.close()
    return reports


def write_report(reports: dict[str, TaskReport], out: Path, fps: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {t: {k: v for k, v in asdict(r).items() if k != "episodes"} for t, r in reports.items()}
    (out / "eval.json").write_text(json.dumps(summary, indent=2))
    plot_trajectories(reports, out / "trajectories.png", fps)


def plot_trajectories(reports: dict[str, TaskReport], png: Path, fps: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(4.5 * len(reports), 3.2), squeeze=False)
    for ax, (task, rep) in zip(axes[0], reports.items(), strict=True):
        for ep in rep.episodes[:3]:
            q = np.array(ep.joints)
            t = np.arange(len(q)) / fps
            for j in range(q.shape[1] - 1):
                ax.plot(t, q[:, j], color=f"C{j}", alpha=0.8 if ep.success else 0.35, lw=1)
        ax.set_title(f"{task}: {rep.success_rate:.0%} success")
        ax.set_xlabel("time [s]")
        ax.set_ylabel("joint position [rad]")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
