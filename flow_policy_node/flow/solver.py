"""Fixed-step ODE solvers that integrate a velocity field from t = 0 (noise) to t = 1.

``velocity(x, t)`` takes x (B, ...) and t (B,) and returns dx/dt. Inpainting (real-time
chunking) is not the solver's business: it is a guided velocity field (flow/guidance.py)
that the solver integrates like any other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Velocity = Callable[[Tensor, Tensor], Tensor]


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


def solve(velocity: Velocity, x0: Tensor, steps: int = 10, method: str = "euler") -> Tensor:
    """x(1) (same shape as x0) of dx/dt = velocity(x, t), from x(0) = x0 in ``steps`` equal steps."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    h = 1.0 / steps
    x = x0
    for i in range(steps):
        x = _step(method, velocity, x, i * h, h)
    return x
