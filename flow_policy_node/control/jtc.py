"""JointTrajectoryController semantics, as ros2_control executes a JointTrajectory (no ROS).

The simulator executes trajectories with it, and the converter rebuilds from a bag what
the controller was commanding, so a recorded action is what the robot was asked to do.

- a trajectory starts at its start time (the caller decides it: the header stamp, or
  the time of receipt when the stamp is zero);
- a new trajectory replaces the active one, and any queued one, from its start time on;
- the segment before the first point runs from the target at the start time: the
  previous trajectory's, or the measured state when nothing was commanded before;
- joints a trajectory does not name (NaN columns) hold their target at its start time;
- after the last point the last positions are held.

Positions between points are interpolated linearly (the controller's ``linear`` method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def interp(t: float | np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (N, D) at knots ``times`` (N,), ascending, sampled at ``t``: linear
    between knots, held before the first and after the last (``np.interp`` per column).

    t: a scalar gives (D,), an array (M,) gives (M, D).
    """
    times = np.asarray(times, np.float64)
    values = np.asarray(values, np.float64)
    tq = np.asarray(t, np.float64)
    if len(times) == 1:
        return np.broadcast_to(values[0], (*tq.shape, values.shape[1])).copy()
    i = np.clip(np.searchsorted(times, tq, side="right") - 1, 0, len(times) - 2)
    t0, t1 = times[i], times[i + 1]
    span = t1 - t0
    # A zero-length segment (two points at the same time) is a step to the later point.
    w = np.where(span > 0, (tq - t0) / np.where(span > 0, span, 1.0), tq >= t1)
    w = np.clip(w, 0.0, 1.0)
    return values[i] + w[..., None] * (values[i + 1] - values[i])


@dataclass
class ActiveTrajectory:
    start: float  # s, absolute (sim/ROS time)
    times: np.ndarray  # (N + 1,) from 0: the start state, then the points
    positions: np.ndarray  # (N + 1, D), robot joint order, every joint filled in


class TrajectoryExecutor:
    """The trajectories a controller holds and the joint targets they give over time.

    ``target`` is asked at non-decreasing times: once a newer trajectory has started, the
    older ones are dropped for good.
    """

    def __init__(self, lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> None:
        self.lower, self.upper = lower, upper
        self.queue: list[ActiveTrajectory] = []

    def check_limits(self, positions: np.ndarray, names: list[str]) -> str | None:
        """A reason to reject, or None. positions (N, D) with NaN for joints not named."""
        if self.lower is None or self.upper is None:
            return None
        for j, name in enumerate(names):
            col = positions[:, j]
            col = col[np.isfinite(col)]
            if col.size and (col.min() < self.lower[j] - 1e-6 or col.max() > self.upper[j] + 1e-6):
                return f"joint {name} leaves its limits [{self.lower[j]:.3f}, {self.upper[j]:.3f}]"
        return None

    def accept(self, start: float, times: np.ndarray, positions: np.ndarray, current: np.ndarray) -> None:
        """Queue a trajectory: points at ``start + times`` (N,), ``positions`` (N, D) with
        NaN for joints it does not name; it replaces whatever would run from ``start`` on.
        current: (D,) the measured state, the start when nothing was commanded before."""
        state = self.target(start, current)
        rows = np.vstack([state, positions])
        rows[1:] = np.where(np.isnan(rows[1:]), state, rows[1:])
        active = ActiveTrajectory(start, np.concatenate([[0.0], times]), rows)
        self.queue = [t for t in self.queue if t.start < start] + [active]

    def target(self, now: float, current: np.ndarray) -> np.ndarray:
        """(D,) joint targets at time ``now`` (``current`` when nothing was ever commanded)."""
        active = [t for t in self.queue if t.start <= now]
        if not active:
            return np.array(current, np.float64)
        traj = active[-1]
        self.queue = [t for t in self.queue if t.start >= traj.start]
        return interp(now - traj.start, traj.times, traj.positions)

    def clear(self) -> None:
        self.queue = []
