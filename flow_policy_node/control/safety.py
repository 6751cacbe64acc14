"""Joint limits applied to every target the node publishes.

Order matters: non-finite values are refused first (a NaN must never reach a clamp that
would turn it into a plausible number), then each step's change is capped at
``max_velocity * dt`` starting from where the controller is, then positions are clamped
to their limits. Clamping last keeps every target inside the limits even when the start
was outside them; the velocity cap may then be exceeded only by moving back inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class UnsafeChunk(ValueError):
    """A chunk that must not be published at all; the text says why."""


@dataclass
class JointLimits:
    """(D,) arrays in robot order: lower/upper position and max |velocity| per joint."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray

    def __post_init__(self) -> None:
        self.lower, self.upper = np.asarray(self.lower, float), np.asarray(self.upper, float)
        self.max_velocity = np.asarray(self.max_velocity, float)
        d = len(self.names)
        if not (self.lower.shape == self.upper.shape == self.max_velocity.shape == (d,)):
            raise ValueError(f"limits need {d} values each for {list(self.names)}")
        bad = [
            n
            for n, lo, hi, v in zip(self.names, self.lower, self.upper, self.max_velocity, strict=True)
            if not (lo < hi and v > 0)
        ]
        if bad:
            raise ValueError(f"invalid limits (need lower < upper and velocity > 0) for {bad}")


@dataclass
class SafetyReport:
    clamped: bool  # some position hit a position limit
    rate_limited: bool  # some step was slowed to the velocity limit


def limit_chunk(
    positions: np.ndarray, start: np.ndarray, dt: float, limits: JointLimits
) -> tuple[np.ndarray, SafetyReport]:
    """(M, D) targets made safe, starting from ``start`` (D,); raises UnsafeChunk on NaN/Inf."""
    positions = np.asarray(positions, np.float64)
    if not np.all(np.isfinite(positions)):
        rows, cols = np.nonzero(~np.isfinite(positions))
        joints = sorted({limits.names[c] for c in cols})
        raise UnsafeChunk(
            f"policy produced non-finite targets for {joints} at steps {sorted(set(rows.tolist()))[:5]}"
        )
    if not np.all(np.isfinite(start)):
        raise UnsafeChunk("the controller's start state is not finite")
    step = limits.max_velocity * dt
    out = np.empty_like(positions)
    prev = np.asarray(start, np.float64)
    rate_limited = False
    for m, target in enumerate(positions):
        delta = np.clip(target - prev, -step, step)
        rate_limited |= bool(np.any(np.abs(target - prev) > step + 1e-12))
        prev = prev + delta
        out[m] = prev
    clamped_out = np.clip(out, limits.lower, limits.upper)
    return clamped_out, SafetyReport(bool(np.any(clamped_out != out)), rate_limited)


def velocities(start: np.ndarray, positions: np.ndarray, dt: float) -> np.ndarray:
    """(M, D) velocities for trajectory points: central differences, zero at the last point.

    The last point has zero velocity because the arm must come to rest there if no newer
    chunk arrives.
    """
    full = np.vstack([start[None], positions])
    vel = np.zeros_like(positions)
    if len(positions) > 1:
        vel[:-1] = (full[2:] - full[:-2]) / (2 * dt)
    return vel
