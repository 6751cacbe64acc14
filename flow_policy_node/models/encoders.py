"""Observation encoders in plain torch (no torchvision): images, state, goal, task.

The observation is encoded ONCE per chunk into a conditioning vector and a few tokens;
only the velocity network runs at every ODE step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from flow_policy_node.observation import GOAL, STATE, TASK_INDEX, image_key


@dataclass
class ImageEncoderConfig:
    """ResNet-style CNN with GroupNorm. blocks=(2, 2, 2, 2), width=64 is ResNet-18."""

    width: int = 16
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    pooling: str = "spatial_softmax"  # or "avg"
    out_dim: int = 128


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = _norm(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.n1(self.conv1(x)))
        return torch.relu(self.n2(self.conv2(y)) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """(B, C, H, W) -> (B, 2C): expected image coordinates of each channel's softmax.

    Keypoints make object positions linearly available, which is what a manipulation
    policy needs and why it learns from few demos (Levine et al. 2016).
    """

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        attn = torch.softmax(x.flatten(2), dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
        ex = (attn.sum(2) * xs).sum(-1)
        ey = (attn.sum(3) * ys).sum(-1)
        return torch.cat([ex, ey], dim=1)


class ImageEncoder(nn.Module):
    """(B, 3, h, w) in [0, 1] -> (B, out_dim)."""

    def __init__(self, cfg: ImageEncoderConfig) -> None:
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 5, 2, 2, bias=False), _norm(w), nn.ReLU())
        layers, cin = [], w
        for i, n in enumerate(cfg.blocks):
            cout = w * 2 ** min(i, 3)
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        if cfg.pooling == "spatial_softmax":
            self.pool: nn.Module = nn.Sequential(nn.Conv2d(cin, 32, 1), SpatialSoftmax())
            pooled = 64
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            pooled = cin
        self.proj = nn.Sequential(nn.Linear(pooled, cfg.out_dim), nn.ReLU())

    def forward(self, img: Tensor) -> Tensor:
        return self.proj(self.pool(self.layers(self.stem(img * 2 - 1))))


@dataclass
class ObservationEncoderConfig:
    cameras: tuple[str, ...] = ("front",)
    state_dim: int = 7
    n_tasks: int = 1
    use_goal: bool = True
    n_obs_steps: int = 1  # observation history length (state and images)
    token_dim: int = 128
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)


class ObservationEncoder(nn.Module):
    """Batch dict -> (cond (B, n_tokens * token_dim), tokens (B, n_tokens, token_dim)).

    One token per camera, one for the state (history flattened), one for the task and
    one for the goal. Inputs with a history carry an extra time axis after the batch.
    """

    def __init__(self, cfg: ObservationEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, t = cfg.token_dim, cfg.n_obs_steps
        self.images = nn.ModuleDict({cam: ImageEncoder(cfg.image) for cam in cfg.cameras})
        self.image_proj = nn.ModuleDict({cam: nn.Linear(cfg.image.out_dim * t, d) for cam in cfg.cameras})
        self.state = nn.Sequential(nn.Linear(cfg.state_dim * t, d), nn.SiLU(), nn.Linear(d, d))
        self.task = nn.Embedding(max(cfg.n_tasks, 1), d)
        self.goal = nn.Sequential(nn.Linear(3, d), nn.SiLU(), nn.Linear(d, d)) if cfg.use_goal else None

    @property
    def n_tokens(self) -> int:
        return len(self.cfg.cameras) + 2 + (1 if self.cfg.use_goal else 0)

    @property
    def cond_dim(self) -> int:
        return self.n_tokens * self.cfg.token_dim

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        state = batch[STATE]
        b = state.shape[0]
        tokens = []
        for cam, enc in self.images.items():
            img = batch[image_key(cam)]
            feats = enc(img.flatten(0, 1)) if img.dim() == 5 else enc(img)
            tokens.append(self.image_proj[cam](feats.reshape(b, -1)))
        tokens.append(self.state(state.reshape(b, -1)))
        tokens.append(self.task(batch[TASK_INDEX].long().reshape(b)))
        if self.goal is not None:
            tokens.append(self.goal(batch[GOAL].reshape(b, 3)))
        stacked = torch.stack(tokens, dim=1)
        return stacked.flatten(1), stacked
