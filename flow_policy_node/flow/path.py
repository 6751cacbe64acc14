"""Probability paths for flow matching, in the style of facebookresearch/flow_matching.

Convention (everywhere in this project): t = 0 is noise x0 ~ N(0, I), t = 1 is data x1.
An affine path is x_t = alpha_t x1 + sigma_t x0 with alpha_0 = 0, sigma_0 = 1,
alpha_1 = 1, sigma_1 = 0. Its conditional target velocity is the time derivative

    u_t = d(alpha_t)/dt x1 + d(sigma_t)/dt x0,

which for the linear (CondOT) path alpha_t = t, sigma_t = 1 - t is simply x1 - x0.

A popular blog post writes the target as (x1 - x0) / (1 - t). That mixes two correct
forms: x1 - x0, and (x1 - x_t) / (1 - t), which is equal to it on the linear path. The
mixture is wrong (it is not d x_t / dt) and blows up as t -> 1. A test pins the
correct target against a finite-difference derivative of x_t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SchedulerOutput:
    alpha_t: Tensor
    sigma_t: Tensor
    d_alpha_t: Tensor
    d_sigma_t: Tensor

    @property
    def det(self) -> Tensor:
        """a' s - s' a, the determinant of x_t = a x1 + s x0, u = a' x1 + s' x0 in (x1, x0).

        Where it is 0 the velocity u at x_t says nothing about x1 (the polynomial path at
        t = 0, where every velocity is 0); the linear path has 1 everywhere.
        """
        return self.d_alpha_t * self.sigma_t - self.d_sigma_t * self.alpha_t


class CondOTScheduler:
    """Linear path: alpha_t = t, sigma_t = 1 - t (rectified flow / pi0)."""

    def __call__(self, t: Tensor) -> SchedulerOutput:
        return SchedulerOutput(t, 1 - t, torch.ones_like(t), -torch.ones_like(t))


class CosineScheduler:
    """alpha_t = sin(pi t / 2), sigma_t = cos(pi t / 2)."""

    def __call__(self, t: Tensor) -> SchedulerOutput:
        a = 0.5 * math.pi
        return SchedulerOutput(
            torch.sin(a * t), torch.cos(a * t), a * torch.cos(a * t), -a * torch.sin(a * t)
        )


class VPScheduler:
    """Variance-preserving path of score-based diffusion, written with t = 1 as data.

    T(t) = 0.5 (1 - t)^2 (beta_max - beta_min) + (1 - t) beta_min,
    alpha_t = exp(-T / 2), sigma_t = sqrt(1 - exp(-T)). sigma_1 = 0 exactly; alpha_0 is
    exp(-(beta_max + beta_min) / 4), close to but not exactly 0, as in the original.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        self.beta_min, self.beta_max = beta_min, beta_max

    def __call__(self, t: Tensor) -> SchedulerOutput:
        s = 1 - t
        big_t = 0.5 * s**2 * (self.beta_max - self.beta_min) + s * self.beta_min
        d_big_t = -s * (self.beta_max - self.beta_min) - self.beta_min
        alpha = torch.exp(-0.5 * big_t)
        sigma = torch.sqrt((1 - torch.exp(-big_t)).clamp_min(1e-12))
        return SchedulerOutput(
            alpha, sigma, -0.5 * d_big_t * alpha, 0.5 * d_big_t * torch.exp(-big_t) / sigma
        )


class PolynomialScheduler:
    """alpha_t = t^n, sigma_t = 1 - t^n."""

    def __init__(self, n: float = 2.0) -> None:
        self.n = n

    def __call__(self, t: Tensor) -> SchedulerOutput:
        d = self.n * t.clamp_min(0) ** (self.n - 1)
        return SchedulerOutput(t**self.n, 1 - t**self.n, d, -d)


SCHEDULERS = {
    "linear": CondOTScheduler,
    "cosine": CosineScheduler,
    "vp": VPScheduler,
    "polynomial": PolynomialScheduler,
}


@dataclass
class PathSample:
    x_t: Tensor  # (B, ...) point on the path
    dx_t: Tensor  # (B, ...) target velocity d x_t / dt
    t: Tensor  # (B,)


class AffinePath:
    """x_t = alpha_t x1 + sigma_t x0 for a given scheduler.

    Besides sampling, the path answers what a velocity means, as flow_matching's
    AffineProbPath does: at a point x_t, the velocity of the path to a data point x1 and the
    data point a velocity heads for are two descriptions of the same thing, and only the
    path knows how to turn one into the other. Real-time chunking's guidance needs the
    second (flow/guidance.py).

    Times ``t`` are a float (one time for the batch) or (B,), broadcast over the trailing
    dimensions of x (B, ...).
    """

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler

    def schedule(self, t: Tensor | float, like: Tensor) -> SchedulerOutput:
        """alpha_t, sigma_t and their derivatives, shaped to broadcast against ``like`` (B, ...)."""
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        if t.dim() == 1:
            t = t.reshape(-1, *([1] * (like.dim() - 1)))
        return self.scheduler(t)

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor) -> PathSample:
        """x0, x1: (B, ...); t: (B,) in [0, 1]."""
        s = self.schedule(t, x1)
        return PathSample(s.alpha_t * x1 + s.sigma_t * x0, s.d_alpha_t * x1 + s.d_sigma_t * x0, t)

    def target_to_velocity(self, x_1: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """(B, ...) the velocity at x_t (B, ...) of the path that ends at x_1 (B, ...).

        Eliminates x0 from x_t = a x1 + s x0, u = a' x1 + s' x0:
        u = (s' x_t + (a' s - s' a) x1) / s. Defined for t < 1 (at t = 1, s = 0 and x_t is x1
        whatever x0 was).
        """
        s = self.schedule(t, x_t)
        return (s.d_sigma_t * x_t + s.det * x_1) / s.sigma_t

    def velocity_to_target(self, velocity: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """(B, ...) the data point x1 that ``velocity`` (B, ...) at x_t (B, ...) heads for.

        The inverse of target_to_velocity: x1 = (s u - s' x_t) / (a' s - s' a). For a learned
        field (the conditional mean of u) this is E[x1 | x_t]; on the linear path it is
        x_t + (1 - t) u. Undefined where a' s - s' a = 0 (SchedulerOutput.det).
        """
        s = self.schedule(t, x_t)
        return (s.sigma_t * velocity - s.d_sigma_t * x_t) / s.det


def make_path(name: str = "linear", **kwargs) -> AffinePath:
    if name not in SCHEDULERS:
        raise ValueError(f"unknown path {name!r}; choose one of {sorted(SCHEDULERS)}")
    return AffinePath(SCHEDULERS[name](**kwargs))
