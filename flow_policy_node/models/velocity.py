"""Velocity networks v(x_t, t | observation) for action chunks x_t of shape (B, H, D).

All take (x (B, H, D), t (B,), cond (B, C), tokens (B, N, d)) and return (B, H, D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class VelocityNetConfig:
    kind: str = "mlp"  # mlp | unet | transformer
    hidden: int = 512
    depth: int = 3
    time_dim: int = 64
    unet_channels: tuple[int, ...] = (64, 128)
    heads: int = 4


def time_embedding(t: Tensor, dim: int, max_period: float = 1000.0) -> Tensor:
    """Sinusoidal embedding of t in [0, 1]: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = (t * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResidualFiLM(nn.Module):
    """h + MLP(LayerNorm(h) * (1 + scale(c)) + shift(c)): adaLN, as in DiT."""

    def __init__(self, hidden: int, cond: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(cond, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        scale, shift = self.film(c).chunk(2, dim=-1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class MLPVelocity(nn.Module):
    """Flattened chunk through residual MLP blocks whose norms are modulated by (t, obs).

    Modulating every block, rather than concatenating t at the input only, gives the
    multiplicative t-x interaction a velocity field needs (v ~ -x / (1 - t) on still joints).
    """

    def __init__(self, cfg: VelocityNetConfig, horizon: int, action_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.cfg, self.h, self.d = cfg, horizon, action_dim
        c = cfg.hidden
        self.cond = nn.Sequential(nn.Linear(cond_dim + cfg.time_dim, c), nn.SiLU())
        self.inp = nn.Linear(horizon * action_dim, c)
        self.blocks = nn.ModuleList(ResidualFiLM(c, c) for _ in range(cfg.depth))
        self.out = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, horizon * action_dim))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, tokens: Tensor) -> Tensor:
        c = self.cond(torch.cat([cond, time_embedding(t, self.cfg.time_dim)], dim=-1))
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, c)
        return self.out(h).view(-1, self.h, self.d)


class FiLMBlock(nn.Module):
    """Conv1d residual block whose GroupNorm output is scaled and shifted by the condition."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv1d(cin, cout, 5, padding=2), nn.GroupNorm(8, cout), nn.Mish())
        self.c2 = nn.Sequential(nn.Conv1d(cout, cout, 5, padding=2), nn.GroupNorm(8, cout), nn.Mish())
        self.film = nn.Linear(cond_dim, 2 * cout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        y = self.c1(x)
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        y = self.c2(y * (1 + scale) + shift)
        return y + self.skip(x)


class UNet1DVelocity(nn.Module):
    """1D temporal UNet over the chunk's time axis with FiLM conditioning (Diffusion Policy)."""

    def __init__(self, cfg: VelocityNetConfig, horizon: int, action_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        c_all = cond_dim + cfg.time_dim
        chans = cfg.unet_channels
        self.down = nn.ModuleList()
        cin = action_dim
        for c in chans:
            self.down.append(FiLMBlock(cin, c, c_all))
            cin = c
        self.mid = FiLMBlock(cin, cin, c_all)
        self.up = nn.ModuleList()
        for c in reversed(chans[:-1]):
            self.up.append(FiLMBlock(cin + c, c, c_all))
            cin = c
        self.out = nn.Conv1d(cin, action_dim, 1)
        self.pool = nn.AvgPool1d(2, ceil_mode=True)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, tokens: Tensor) -> Tensor:
        c = torch.cat([cond, time_embedding(t, self.cfg.time_dim)], dim=-1)
        y = x.transpose(1, 2)  # (B, D, H)
        skips = []
        for i, block in enumerate(self.down):
            y = block(y, c)
            if i < len(self.down) - 1:
                skips.append(y)
                y = self.pool(y)
        y = self.mid(y, c)
        for block in self.up:
            skip = skips.pop()
            y = nn.functional.interpolate(y, size=skip.shape[-1], mode="nearest")
            y = block(torch.cat([y, skip], dim=1), c)
        return self.out(y).transpose(1, 2)


class TransformerVelocity(nn.Module):
    """Action tokens (one per chunk step, plus time) cross-attend to observation tokens."""

    def __init__(
        self, cfg: VelocityNetConfig, horizon: int, action_dim: int, cond_dim: int, token_dim: int
    ) -> None:
        super().__init__()
        d = token_dim
        self.cfg = cfg
        self.inp = nn.Linear(action_dim, d)
        self.pos = nn.Parameter(torch.zeros(1, horizon, d))
        self.time = nn.Linear(cfg.time_dim, d)
        layer = nn.TransformerDecoderLayer(
            d, cfg.heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.depth)
        self.out = nn.Linear(d, action_dim)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, tokens: Tensor) -> Tensor:
        h = self.inp(x) + self.pos + self.time(time_embedding(t, self.cfg.time_dim)).unsqueeze(1)
        return self.out(self.decoder(h, tokens))


def make_velocity_net(
    cfg: VelocityNetConfig, horizon: int, action_dim: int, cond_dim: int, token_dim: int
) -> nn.Module:
    if cfg.kind == "mlp":
        return MLPVelocity(cfg, horizon, action_dim, cond_dim)
    if cfg.kind == "unet":
        return UNet1DVelocity(cfg, horizon, action_dim, cond_dim)
    if cfg.kind == "transformer":
        return TransformerVelocity(cfg, horizon, action_dim, cond_dim, token_dim)
    raise ValueError(f"unknown velocity net {cfg.kind!r}; choose mlp, unet or transformer")
