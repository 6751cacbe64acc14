"""Map states and actions to [-1, 1] with the dataset's 1st/99th percentiles.

Quantiles rather than min/max (as pi0/openpi do) so that a few outliers in the demos do
not squash the useful range; values beyond them are not clipped.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# The smallest half-range a dimension is normalised by (robot units: rad, m). A joint that
# the demos hold still still wobbles by float noise: bags from the ROS pipeline gave the
# held wrist joint a range of 3e-5 rad, which normalised its noise 30 000-fold into the
# largest target of the loss, and the policies trained on them picked 60-70% instead of
# 95-100% (same demos without the noise). 5 mm / 5 mrad is below anything a task moves.
MIN_HALF_SPAN = 5e-3


class Normalizer(nn.Module):
    def __init__(self, low: list[float], high: list[float]) -> None:
        super().__init__()
        low_t = torch.tensor(low, dtype=torch.float32)
        high_t = torch.tensor(high, dtype=torch.float32)
        self.register_buffer("center", (high_t + low_t) / 2)
        self.register_buffer("half_span", ((high_t - low_t) / 2).clamp(min=MIN_HALF_SPAN))

    @classmethod
    def from_stats(cls, stats: dict[str, list[float]]) -> Normalizer:
        return cls(stats.get("q01", stats["min"]), stats.get("q99", stats["max"]))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.center) / self.half_span

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.half_span + self.center
