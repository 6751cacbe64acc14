"""Map states and actions to [-1, 1] with the dataset's 1st/99th percentiles.

Quantiles rather than min/max (as pi0/openpi do) so that a few outliers in the demos do
not squash the useful range; values beyond them are not clipped.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    def __init__(self, low: list[float], high: list[float]) -> None:
        super().__init__()
        low_t = torch.tensor(low, dtype=torch.float32)
        high_t = torch.tensor(high, dtype=torch.float32)
        # A joint that never moved in the demos keeps unit scale instead of dividing by 0.
        span = torch.where(high_t - low_t > 1e-6, high_t - low_t, torch.full_like(low_t, 2.0))
        self.register_buffer("center", (high_t + low_t) / 2)
        self.register_buffer("half_span", span / 2)

    @classmethod
    def from_stats(cls, stats: dict[str, list[float]]) -> Normalizer:
        return cls(stats.get("q01", stats["min"]), stats.get("q99", stats["max"]))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.center) / self.half_span

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.half_span + self.center
