"""A bag's streams onto an exact 1/fps grid, with the commanded action rebuilt; each episode checked.

Every stream is resampled onto t_k = t_0 + k / fps, where t_0 is the first instant every
required stream has data:

- state and images: the latest sample at or before t_k; older than ``max_gap`` s counts
  as a gap (a dropped tick);
- action: the joint targets a JointTrajectoryController following the recorded
  trajectories commands at t_k + 1/fps (:mod:`flow_policy_node.control.jtc`), or the
  next state when no trajectory topic is configured;
- task: the episode's recorded task, else the first command on the command topic;
- goal: the latest goal point at or before t_k, zeros when none.

Each episode gets a validation report (frames, gap ticks, duplicated samples, stamp
jitter, out-of-order stamps); episodes with too many gaps, NaNs, missing topics or joints,
no task or no data are skipped with the reason, never written half-right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flow_policy_node.control.jtc import TrajectoryExecutor
from flow_policy_node.data.bags import (
    ACTION,
    COMMAND,
    GOAL,
    STATE,
    BagEpisode,
    BagTopics,
    EpisodeSkipped,
    RawImage,
    Stream,
    Trajectory,
    camera_stream,
)


@dataclass
class ResampleConfig(BagTopics):
    fps: int = 10  # LeRobot v3 datasets have an integer frame rate
    max_gap: float = 0.25  # s without a sample before a tick counts as a gap
    max_gap_fraction: float = 0.05  # more gap ticks than this skips the episode
    max_out_of_order: float = 0.01  # fraction of a stream's stamps allowed to go backwards (then sorted)


@dataclass
class EpisodeReport:
    bag: str
    frames: int = 0
    gap_ticks: int = 0
    duplicated_samples: int = 0
    jitter_ms: dict[str, float] = field(default_factory=dict)
    out_of_order: dict[str, int] = field(default_factory=dict)
    skipped: str = ""
    task: str = ""
    success: str = "unknown"


@dataclass
class GridEpisode:
    """One episode on the frame grid: n frames."""

    state: np.ndarray  # (n, D)
    action: np.ndarray  # (n, D)
    goal: np.ndarray  # (n, 3)
    images: dict[str, list[RawImage]]  # camera name -> n images
    task: str


def latest(stream: Stream, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the latest sample at or before each tick (-1: none), and its age (s)."""
    times = np.asarray(stream.times)
    idx = np.searchsorted(times, ticks, side="right") - 1
    age = np.where(idx >= 0, ticks - times[np.maximum(idx, 0)], np.inf)
    return idx, age


def resample(episode: BagEpisode, cfg: ResampleConfig, report: EpisodeReport) -> GridEpisode:
    streams = episode.streams
    required = [STATE, *(camera_stream(c) for c in cfg.cameras)] + ([ACTION] if cfg.action_topic else [])
    if not streams:
        raise EpisodeSkipped("empty episode: none of the configured topics has messages")
    missing = [cfg.topic_of(k) for k in required if k not in streams]
    if missing:
        raise EpisodeSkipped(f"missing topics {missing}")
    for key, s in streams.items():
        report.out_of_order[key] = s.out_of_order
        # Only the sampled streams must be in order; a sparse latched one (the goal) may mix
        # a message without a stamp (timed on arrival) with stamped ones, and is just sorted.
        if key in required and s.out_of_order > cfg.max_out_of_order * len(s.times):
            raise EpisodeSkipped(f"{s.out_of_order} out-of-order timestamps on {cfg.topic_of(key)}")
        if s.out_of_order:
            order = np.argsort(s.times, kind="stable")
            s.times = [s.times[i] for i in order]
            s.values = [s.values[i] for i in order]
    t0 = max(streams[k].times[0] for k in required)
    t1 = min(streams[k].times[-1] for k in required if k != ACTION)
    n = int(np.floor((t1 - t0) * cfg.fps + 1e-9)) + 1
    if n < 2:
        raise EpisodeSkipped(f"episode too short: {max(t1 - t0, 0):.2f} s of overlapping data")
    ticks = t0 + np.arange(n) / cfg.fps

    gaps = np.zeros(n, bool)
    idx_state, age = latest(streams[STATE], ticks)
    gaps |= age > cfg.max_gap
    states = np.array(streams[STATE].values)[idx_state]
    images = {}
    for cam in cfg.cameras:
        s = streams[camera_stream(cam)]
        idx, age = latest(s, ticks)
        gaps |= age > cfg.max_gap
        report.duplicated_samples += int(n - len(np.unique(idx)))
        images[cam] = [s.values[i] for i in idx]
    for key, s in streams.items():
        if key in required and len(s.times) > 2:
            report.jitter_ms[key] = float(np.std(np.diff(s.times)) * 1000)
    report.gap_ticks = int(gaps.sum())
    if gaps.mean() > cfg.max_gap_fraction:
        raise EpisodeSkipped(f"{gaps.sum()} of {n} ticks have no sample within {cfg.max_gap} s")

    if cfg.action_topic:
        actions = commanded(streams[ACTION], streams[STATE], ticks + 1.0 / cfg.fps, states)
    else:
        actions = np.vstack([states[1:], states[-1:]])
    if not np.all(np.isfinite(actions)):
        raise EpisodeSkipped("non-finite commanded joint targets")
    goals = np.zeros((n, 3), np.float32)
    if GOAL in streams:
        idx, _ = latest(streams[GOAL], ticks)
        values = np.array(streams[GOAL].values)
        goals[idx >= 0] = values[idx[idx >= 0]]
    custom = episode.metadata
    task = custom.get("task") or (streams[COMMAND].values[0] if COMMAND in streams else "")
    if not task:
        raise EpisodeSkipped(f"no task: neither episode metadata nor {cfg.command_topic} names one")
    report.task, report.success, report.frames = task, str(custom.get("success", "unknown")), n
    return GridEpisode(states, actions, goals, images, task)


def commanded(
    commands: Stream[Trajectory], measured: Stream[np.ndarray], times: np.ndarray, states: np.ndarray
) -> np.ndarray:
    """(n, D) joint targets at ``times`` (ascending) from the recorded trajectories.

    Each trajectory takes effect at its stamp, as the controller would have run it;
    before the first one the target is the state at each tick (``states`` (n, D)).
    ``measured`` gives the state a first trajectory starts from.
    """
    starts = np.asarray(commands.times)
    idx, _ = latest(measured, starts)
    anchors = np.array(measured.values)[np.maximum(idx, 0)]
    controller = TrajectoryExecutor()
    out = np.empty_like(states)
    i = 0
    for k, t in enumerate(times):
        while i < len(starts) and starts[i] <= t:
            traj = commands.values[i]
            controller.accept(starts[i], traj.times, traj.positions, anchors[i])
            i += 1
        out[k] = controller.target(t, states[k])
    return out
