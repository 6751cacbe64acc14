"""Fixed-step ODE solvers that integrate a velocity field from t = 0 (noise) to t = 1.

``velocity(x, t)`` takes x (B, ...) and t (B,) and returns dx/dt. ``project(x, t)``, if
given, is applied to the state at every grid time (t = 0 included): the policy uses it to
inpaint the chunk steps already committed to the robot (real-time chunking), replacing them
by their known point on the probability path, so that at t = 1 they equal the prefix and
the free steps are integrated consistently with them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Velocity = Callable[[Tensor, Tensor], Tensor]
Project = Callable[[Tensor, float], Tensor]


def _step(method: str, velocity: Velocity, x: Tensor, t: float, h: float) -> Tensor:
    b = x.shape[0]

    def v(xx: Tensor, tt: float) -> Tensor:
        return velocity(xx, torch.full((b,), tt, dtype=x.dtype, device=x.device))

    if method == "euler":
        return x + h * v(x, t)
    if method == "midpoint":
        return x + h * v(x + 0.5 * h * v(x, t), t + 0.5 * h)
    if method == "heun":
        k1 = v(x, t)
        k2 = v(x + h * k1, t + h)
        return x + 0.5 * h * (k1 + k2)
    if method == "rk4":
        k1 = v(x, t)
        k2 = v(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = v(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = v(x + h * k3, t + h)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(f"unknown solver {method!r}; choose euler, midpoint, heun or rk4")


SOLVERS = ("euler", "midpoint", "heun", "rk4")


def solve(
    velocity: Velocity,
    x0: Tensor,
    steps: int = 10,
    method: str = "euler",
    project: Project | None = None,
    t0: float = 0.0,
    t1: float = 1.0,
    return_intermediates: bool = False,
) -> Tensor | list[Tensor]:
    """Integrate dx/dt = velocity(x, t) from t0 to t1 in ``steps`` equal steps.

    Returns x(t1) (same shape as x0), or the list of all ``steps + 1`` states when
    ``return_intermediates`` (for plots and RViz).
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    h = (t1 - t0) / steps
    x = project(x0, t0) if project else x0
    states = [x]
    for i in range(steps):
        t = t0 + i * h
        x = _step(method, velocity, x, t, h)
        if project:
            x = project(x, t + h)
        if return_intermediates:
            states.append(x)
    return states if return_intermediates else x
