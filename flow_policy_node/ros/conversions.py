"""The one message <-> numpy conversion module.

Joint vectors are always in :class:`~flow_policy_node.robot.ArmSpec` order; messages are
matched by joint *name*, never by index. Errors raise :class:`ConversionError` with a
message a user can act on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint


class ConversionError(ValueError):
    """A message that cannot be turned into what we need; the text says why."""


# --- time -------------------------------------------------------------------------------


def stamp_to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    # Through integer nanoseconds: floor(2.9999999996) + round(frac) would give 2.0 s.
    sec, nanosec = divmod(round(t * 1e9), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def sec_to_duration(t: float) -> Duration:
    sec, nanosec = divmod(round(t * 1e9), 1_000_000_000)
    return Duration(sec=sec, nanosec=nanosec)


def duration_to_sec(d: Duration) -> float:
    return d.sec + d.nanosec * 1e-9


# --- joints -----------------------------------------------------------------------------


def joint_positions(msg: JointState, joint_names: Sequence[str]) -> np.ndarray:
    """(D,) float64 positions of ``joint_names`` from ``msg``, matched by name.

    Raises ConversionError naming missing joints, a position/name length mismatch, or
    non-finite values.
    """
    if len(msg.position) != len(msg.name):
        raise ConversionError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [n for n in joint_names if n not in index]
    if missing:
        raise ConversionError(f"JointState lacks joints {missing} (has {list(msg.name)})")
    out = np.array([msg.position[index[n]] for n in joint_names], dtype=np.float64)
    if not np.all(np.isfinite(out)):
        bad = [n for n, v in zip(joint_names, out, strict=True) if not math.isfinite(v)]
        raise ConversionError(f"JointState has non-finite positions for {bad}")
    return out


def joint_state_msg(
    names: Sequence[str],
    positions: np.ndarray,
    velocities: np.ndarray | None = None,
    stamp: Time | None = None,
) -> JointState:
    msg = JointState()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    if velocities is not None:
        msg.velocity = [float(v) for v in velocities]
    return msg


# --- images -----------------------------------------------------------------------------


def rgb_to_image(rgb: np.ndarray, stamp: Time | None = None, frame_id: str = "") -> Image:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ConversionError(f"expected (h, w, 3) uint8, got {rgb.shape} {rgb.dtype}")
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


# --- trajectories -----------------------------------------------------------------------


def trajectory_msg(
    joint_names: Sequence[str],
    positions: np.ndarray,
    dt: float,
    stamp: Time | None = None,
    velocities: np.ndarray | None = None,
    first_offset: float | None = None,
) -> JointTrajectory:
    """JointTrajectory with point k at time_from_start = first_offset + k * dt.

    positions: (H, D); velocities: (H, D) or None (then finite differences are used).
    first_offset defaults to dt (the first point is one control period ahead).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != len(joint_names):
        raise ConversionError(f"positions shape {positions.shape} does not match {len(joint_names)} joints")
    if not np.all(np.isfinite(positions)):
        raise ConversionError("refusing to build a trajectory with non-finite positions")
    if velocities is None:
        velocities = np.gradient(positions, dt, axis=0) if len(positions) > 1 else np.zeros_like(positions)
    offset = dt if first_offset is None else first_offset
    msg = JointTrajectory()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.joint_names = list(joint_names)
    for k, (p, v) in enumerate(zip(positions, velocities, strict=True)):
        point = JointTrajectoryPoint()
        point.positions = [float(x) for x in p]
        point.velocities = [float(x) for x in v]
        point.time_from_start = sec_to_duration(offset + k * dt)
        msg.points.append(point)
    return msg


def trajectory_arrays(msg: JointTrajectory, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(times (N,), positions (N, D)) of a trajectory, columns reordered to ``joint_names``.

    Raises ConversionError for unknown or missing joints, wrong point sizes, non-finite
    values, or times that do not strictly increase.
    """
    names = list(msg.joint_names)
    if len(set(names)) != len(names):
        raise ConversionError(f"duplicate joint names in trajectory: {names}")
    unknown = [n for n in names if n not in joint_names]
    if unknown:
        raise ConversionError(f"trajectory names unknown joints {unknown}")
    if not msg.points:
        raise ConversionError("trajectory has no points")
    times = np.array([duration_to_sec(p.time_from_start) for p in msg.points])
    if np.any(np.diff(times) <= 0):
        raise ConversionError(f"time_from_start must strictly increase, got {times.tolist()}")
    cols = [names.index(n) if n in names else -1 for n in joint_names]
    out = np.full((len(msg.points), len(joint_names)), np.nan)
    for k, point in enumerate(msg.points):
        if len(point.positions) != len(names):
            raise ConversionError(f"point {k} has {len(point.positions)} positions for {len(names)} joints")
        for j, c in enumerate(cols):
            if c >= 0:
                out[k, j] = point.positions[c]
    given = [c >= 0 for c in cols]
    if not np.all(np.isfinite(out[:, given])):
        raise ConversionError("trajectory contains non-finite positions")
    return times, out
