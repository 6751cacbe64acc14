"""Training-time distributions over t in [0, 1] (t = 0 noise, t = 1 data)."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_time(kind: str, n: int, generator: torch.Generator | None = None, device="cpu") -> Tensor:
    """(n,) times.

    uniform:      t ~ U(0, 1).
    logit_normal: t = sigmoid(z), z ~ N(0, 1) (SD3): concentrates on mid times.
    beta:         pi0's choice, written in our convention: t = s (1 - u), u ~ Beta(1.5, 1),
                  s = 0.999. Beta(1.5, 1) has density ~ sqrt(u), so mass sits at large u,
                  i.e. small t: training emphasises the noisy end, where chunks are decided.
    """
    if kind == "uniform":
        return torch.rand(n, generator=generator, device=device)
    if kind == "logit_normal":
        return torch.sigmoid(torch.randn(n, generator=generator, device=device))
    if kind == "beta":
        # Inverse CDF of Beta(1.5, 1): F(u) = u^1.5, so u = v^(2/3) for v ~ U(0, 1).
        u = torch.rand(n, generator=generator, device=device) ** (2.0 / 3.0)
        return 0.999 * (1 - u)
    raise ValueError(f"unknown time sampling {kind!r}; choose uniform, logit_normal or beta")
