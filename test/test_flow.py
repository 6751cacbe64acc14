"""Issue 3: flow-matching maths: path targets, solver orders, learned velocity fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from flow_policy_node.flow import make_path, masked_mse, sample_time, solve
from flow_policy_node.flow.path import SCHEDULERS
from flow_policy_node.models.velocity import time_embedding


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_target_velocity_is_the_time_derivative_of_x_t(name: str) -> None:
    path = make_path(name)
    g = torch.Generator().manual_seed(0)
    x0, x1 = (
        torch.randn(64, 5, generator=g, dtype=torch.float64),
        torch.randn(64, 5, generator=g, dtype=torch.float64),
    )
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.9 + 0.05
    h = 1e-6
    fd = (path.sample(x0, x1, t + h).x_t - path.sample(x0, x1, t - h).x_t) / (2 * h)
    torch.testing.assert_close(path.sample(x0, x1, t).dx_t, fd, rtol=1e-5, atol=1e-6)
    # Endpoints: t = 0 is noise; t = 1 is data.
    torch.testing.assert_close(
        path.sample(x0, x1, torch.ones(64, dtype=torch.float64)).x_t, x1, atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_x1_estimate_recovers_the_data_point_each_path_heads_for(name: str) -> None:
    """RTC guidance asks the path where a velocity leads; the linear answer is wrong elsewhere."""
    path = make_path(name)
    g = torch.Generator().manual_seed(1)
    x0, x1 = (torch.randn(8, 5, generator=g, dtype=torch.float64) for _ in range(2))
    for t in (0.1, 0.5, 0.9):
        s = path.sample(x0, x1, torch.full((8,), t, dtype=torch.float64))
        torch.testing.assert_close(path.x1_estimate(s.x_t, s.dx_t, t), x1, rtol=1e-6, atol=1e-6)
        linear_guess = s.x_t + (1 - t) * s.dx_t
        if name != "linear":
            assert (linear_guess - x1).abs().max() > 1e-3, "the linear formula would have been right"


def test_linear_target_is_x1_minus_x0_not_the_blog_formula() -> None:
    path = make_path("linear")
    x0, x1, t = torch.randn(8, 3), torch.randn(8, 3), torch.full((8,), 0.9)
    target = path.sample(x0, x1, t).dx_t
    torch.testing.assert_close(target, x1 - x0)
    blog = (x1 - x0) / (1 - t[:, None])
    assert (target - blog).abs().max() > 1.0


def test_time_samplers_have_their_documented_shape() -> None:
    g = torch.Generator().manual_seed(0)
    beta = sample_time("beta", 20000, g)
    assert beta.min() >= 0 and beta.max() < 1
    # Beta(1.5, 1) towards noise: mean of 0.999 * (1 - u), E[u] = 0.6 -> 0.3996.
    assert abs(beta.mean().item() - 0.3996) < 0.01
    assert abs(sample_time("uniform", 20000, g).mean().item() - 0.5) < 0.01
    assert abs(sample_time("logit_normal", 20000, g).median().item() - 0.5) < 0.02
    with pytest.raises(ValueError, match="unknown time sampling"):
        sample_time("gaussian", 4)


def test_masked_loss_ignores_padded_steps() -> None:
    pred, target = torch.zeros(2, 4, 3), torch.zeros(2, 4, 3)
    target[:, 3] = 100.0
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[:, 3] = True
    assert masked_mse(pred, target, pad).item() == 0.0
    assert masked_mse(pred, target).item() > 0.0


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_solver_order_of_accuracy(method: str, order: int) -> None:
    # dx/dt = x cos(t) + t: no closed form needed beyond a tight reference solution.
    def v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x * torch.cos(t)[:, None]

    x0 = torch.tensor([[1.0], [-0.5]], dtype=torch.float64)
    exact = x0 * math.exp(math.sin(1.0))
    errors = [(solve(v, x0, n, method) - exact).abs().max().item() for n in (8, 16, 32)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    for r in ratios:
        assert abs(math.log2(r) - order) < 0.35, (method, errors, ratios)


def test_solver_returns_intermediates_and_projects() -> None:
    states = solve(lambda x, t: torch.ones_like(x), torch.zeros(1, 2), 4, return_intermediates=True)
    assert len(states) == 5
    torch.testing.assert_close(states[-1], torch.ones(1, 2))
    pinned = solve(lambda x, t: torch.ones_like(x), torch.zeros(1, 2), 4, project=lambda x, t: x * 0)
    assert pinned.abs().max() == 0


class TinyVelocity(nn.Module):
    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + 32, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, time_embedding(t, 32)], dim=-1))


def train_field(sample_x1, dim: int, steps: int, seed: int = 0) -> TinyVelocity:
    torch.manual_seed(seed)
    model = TinyVelocity(dim)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    path = make_path("linear")
    for _ in range(steps):
        x1 = sample_x1(256)
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1))
        ps = path.sample(x0, x1, t)
        loss = ((model(ps.x_t, t) - ps.dx_t) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_learned_field_matches_closed_form_gaussian_marginal_velocity() -> None:
    mu, s = torch.tensor([2.0, -1.0]), 0.5
    model = train_field(lambda n: mu + s * torch.randn(n, 2), 2, 1500)
    # x_t ~ N(t mu, (t^2 s^2 + (1 - t)^2) I); E[x1 - x0 | x_t = x] in closed form.
    errs = []
    for t in (0.2, 0.5, 0.8):
        var = t**2 * s**2 + (1 - t) ** 2
        x = t * mu + math.sqrt(var) * torch.randn(500, 2)
        exact = mu + (t * s**2 - (1 - t)) / var * (x - t * mu)
        with torch.no_grad():
            learned = model(x, torch.full((500,), t))
        errs.append(((learned - exact).norm(dim=1) / exact.norm(dim=1)).mean().item())
    assert max(errs) < 0.1, errs


def test_samples_cover_all_eight_modes_of_a_gaussian_mixture() -> None:
    angles = torch.arange(8) * (2 * math.pi / 8)
    centers = 3 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)

    def mixture(n: int) -> torch.Tensor:
        return centers[torch.randint(0, 8, (n,))] + 0.15 * torch.randn(n, 2)

    model = train_field(mixture, 2, 2500)
    with torch.no_grad():
        x = solve(lambda x, t: model(x, t), torch.randn(2000, 2), 50, "midpoint")
    nearest = torch.cdist(x, centers).argmin(dim=1)
    dist = torch.cdist(x, centers).min(dim=1).values
    counts = np.bincount(nearest[dist < 1.0].numpy(), minlength=8)
    assert (counts > 2000 / 8 * 0.4).all(), counts
    assert (dist < 1.0).float().mean() > 0.8
