"""Inpainting by guidance: real-time chunking's way of continuing a committed prefix.

Black et al. 2025 ("Real-Time Execution of Action Chunking Flow Policies") steer the ODE
with pseudo-inverse guidance (PiGDM): the data point the current velocity heads for, x1_hat,
is pulled towards the known values on the constrained entries, and the correction flows
back through the network's Jacobian, so the free entries bend to continue the prefix
instead of jumping at the seam:

    v' = v + c(t) J^T W (y - x1_hat),   J = d x1_hat / d x_t,   W: 1 on the prefix, else 0.

PiGDM writes the correction on the score, with weight 1 / r_t^2, r_t^2 = s^2 / (a^2 + s^2)
(the posterior variance of unit-variance data, which normalised actions are). An affine
path's velocity is v = (a' / a) x_t + b_t * score with b_t = s (a' s - s' a) / a, so on the
velocity the weight is

    c(t) = b_t / r_t^2 = (a' s - s' a) (a^2 + s^2) / (a s),   capped at beta.

On the linear path (a = t, s = 1 - t) this is the paper's (1 - t) / (t r_t^2). Both x1_hat
and c(t) come from the path, so guidance is right for every scheduler in path.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flow_policy_node.flow.path import AffinePath
from flow_policy_node.flow.solver import Velocity


def guidance_weight(path: AffinePath, t: float, max_weight: float) -> float:
    """c(t) above, capped at ``max_weight``; 0 where the velocity says nothing about x1."""
    s = path.scheduler(torch.tensor(float(t), dtype=torch.float64))
    det, a, sig = float(s.det), float(s.alpha_t), float(s.sigma_t)
    if abs(det) < 1e-9:
        return 0.0
    if a <= 0.0 or sig <= 0.0:  # the weight diverges at the ends of the path
        return max_weight
    return min(max_weight, det * (a * a + sig * sig) / (a * sig))


def inpainting_velocity(path: AffinePath, velocity: Velocity, prefix: Tensor, max_weight: float) -> Velocity:
    """``velocity`` guided so that the first K steps of the solution follow ``prefix``.

    velocity(x, t): x (B, H, D), t (B,) -> (B, H, D), all entries of t equal (the solvers'
    fixed grid). prefix: (B, K, D), K <= H, in the same (normalised) units as x. The guided
    solution comes close to the prefix but not exactly onto it; callers that need the
    committed steps exact set them after solving.
    """
    k = prefix.shape[1]

    def guided(x: Tensor, t: Tensor) -> Tensor:
        weight = guidance_weight(path, float(t[0]), max_weight)
        if weight == 0.0:
            return velocity(x, t)
        # The policy samples under inference_mode; guidance needs the Jacobian.
        with torch.inference_mode(False), torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            v = velocity(xg, t.clone())
            x1_hat = path.velocity_to_target(v, xg, float(t[0]))
            err = torch.zeros_like(x1_hat)
            err[:, :k] = prefix - x1_hat[:, :k].detach()
            (grad,) = torch.autograd.grad(x1_hat, xg, err)
        return v.detach() + weight * grad

    return guided
