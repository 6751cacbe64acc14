"""Trajectory execution as ros2_control's JointTrajectoryController does it (no rclpy).

- header stamp zero means "start now"; otherwise the trajectory starts at its stamp;
- a new trajectory replaces the active one from its start time on;
- the segment before the first point runs from the state at the start time;
- joints are matched by name; joints a trajectory does not name hold their targets;
- after the last point the last positions are held.
Positions between points are interpolated linearly (the controller's ``linear`` method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ActiveTrajectory:
    start: float  # s, absolute (sim/ROS time)
    times: np.ndarray  # (N + 1,) from 0: the start state, then the points
    positions: np.ndarray  # (N + 1, D), robot joint order; NaN columns = not commanded


class TrajectoryExecutor:
    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower, self.upper = lower, upper
        self.queue: list[ActiveTrajectory] = []

    def check_limits(self, positions: np.ndarray, names: list[str]) -> str | None:
        """A reason to reject, or None. positions (N, D) with NaN for joints not named."""
        for j, name in enumerate(names):
            col = positions[:, j]
            col = col[np.isfinite(col)]
            if col.size and (col.min() < self.lower[j] - 1e-6 or col.max() > self.upper[j] + 1e-6):
                return f"joint {name} leaves its limits [{self.lower[j]:.3f}, {self.upper[j]:.3f}]"
        return None

    def accept(self, start: float, times: np.ndarray, positions: np.ndarray, current: np.ndarray) -> None:
        """Queue a validated trajectory; drop what it replaces."""
        state = self.target(start, current)
        times = np.concatenate([[0.0], times])
        rows = np.vstack([state, positions])
        rows[1:] = np.where(np.isnan(rows[1:]), state, rows[1:])
        self.queue = [t for t in self.queue if t.start < start] + [ActiveTrajectory(start, times, rows)]

    def target(self, now: float, current: np.ndarray) -> np.ndarray:
        """Joint targets at time ``now`` (``current`` when nothing was ever commanded)."""
        active = [t for t in self.queue if t.start <= now]
        if not active:
            return current.copy()
        traj = active[-1]
        # Older trajectories are finished with for good once a newer one has started.
        self.queue = [t for t in self.queue if t.start >= traj.start]
        rel = now - traj.start
        out = np.empty(traj.positions.shape[1])
        for j in range(len(out)):
            out[j] = np.interp(rel, traj.times, traj.positions[:, j])
        return out

    def clear(self) -> None:
        self.queue = []
