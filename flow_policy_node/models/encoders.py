"""Observation encoders in plain torch (no torchvision): images, state, goal, task.

The observation is encoded ONCE per chunk into a conditioning vector and a few tokens;
only the velocity network runs at every ODE step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from flow_policy_node.models.resnet import ResNet18Trunk
from flow_policy_node.observation import GOAL, STATE, TASK_INDEX, image_key


@dataclass
class ImageEncoderConfig:
    """ResNet-style CNN with GroupNorm; stem_stride=2, blocks=(2, 2, 2, 2), width=64 is ResNet-18.

    Each entry of ``blocks`` is a stage (the first keeps the stem's resolution, the others
    halve it). The default, 4x4 patches and one stage, pools a 24x24 map of a 96x96 image,
    where a 4 cm cube is still two cells wide, and trains at ~25 steps/s on 2 cores; the
    ResNet-like (5x5 stem, four stages, 6x6 map) trained at 7 and located cubes 3x worse
    (measured in benchmarks/vision.py's development, 40 demos per pick task).
    """

    width: int = 16
    stem_stride: int = 4  # 4: 4x4 patches; 2: a 5x5 convolution (4x the pixels to convolve)
    blocks: tuple[int, ...] = (1,)
    pooling: str = "spatial_softmax"  # or "avg"
    keypoints: int = 32  # spatial-softmax channels
    # Standardise each keypoint map (zero mean, unit spread over the image) before its
    # softmax, so that how peaked it is does not follow the image's contrast: dim light
    # would otherwise flatten the softmax and pull every keypoint toward the image centre.
    keypoint_norm: bool = False
    out_dim: int = 128
    # Scale and shift the last feature map by the command (FiLM), so that what the keypoints
    # attend to depends on it: "pick up the red cube" looks for red.
    film: bool = True
    # "resnet18": a torchvision-layout ResNet-18 trunk to layer3 (models/resnet.py) in place
    # of the small CNN (width, stem_stride, blocks unused), started from ``pretrained`` (a
    # local safetensors file of torchvision's resnet18) when training begins.
    backbone: str = "small"
    pretrained: str = ""


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

    def __init__(self, standardize: bool = False) -> None:
        super().__init__()
        # Learnt sharpness: a peaked softmax localises a small object to a fraction of a cell.
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.standardize = standardize

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        logits = x.flatten(2)
        if self.standardize:
            logits = (logits - logits.mean(-1, keepdim=True)) / (logits.std(-1, keepdim=True) + 1e-5)
        attn = torch.softmax(logits / self.log_temperature.exp(), dim=-1).view(b, c, h, w)
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
        ex = (attn.sum(2) * xs).sum(-1)
        ey = (attn.sum(3) * ys).sum(-1)
        return torch.cat([ex, ey], dim=1)


class ImageEncoder(nn.Module):
    """(B, 3, h, w) in [0, 1], optional command embedding (B, cond_dim) -> (B, out_dim)."""

    def __init__(self, cfg: ImageEncoderConfig, cond_dim: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.backbone == "resnet18":
            self.resnet: ResNet18Trunk | None = ResNet18Trunk(stages=3)
            cin = self.resnet.out_channels
        elif cfg.backbone == "small":
            self.resnet = None
            w = cfg.width
            k, pad = (5, 2) if cfg.stem_stride == 2 else (cfg.stem_stride, 0)
            self.stem = nn.Sequential(
                nn.Conv2d(3, w, k, cfg.stem_stride, pad, bias=False), _norm(w), nn.ReLU()
            )
            layers, cin = [], w
            for i, n in enumerate(cfg.blocks):
                cout = w * 2 ** min(i, 3)
                for j in range(n):
                    layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                    cin = cout
            self.layers = nn.Sequential(*layers)
        else:
            raise ValueError(f"unknown image backbone {cfg.backbone!r}: small or resnet18")
        self.film = nn.Linear(cond_dim, 2 * cin) if cfg.film and cond_dim else None
        if self.film is not None:  # start as the identity
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        if cfg.pooling == "spatial_softmax":
            keypoints = nn.Conv2d(cin, cfg.keypoints, 1)
            self.pool: nn.Module = nn.Sequential(keypoints, SpatialSoftmax(cfg.keypoint_norm))
            pooled = 2 * cfg.keypoints
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            pooled = cin
        self.proj = nn.Sequential(nn.Linear(pooled, cfg.out_dim), nn.ReLU())

    def load_pretrained(self) -> None:
        """Start the backbone from ``cfg.pretrained`` (called when training begins)."""
        if self.cfg.pretrained:
            if self.resnet is None:
                raise ValueError("pretrained weights need backbone: resnet18")
            self.resnet.load_pretrained(self.cfg.pretrained)

    def forward(self, img: Tensor, cond: Tensor | None = None) -> Tensor:
        x = self.resnet(img) if self.resnet is not None else self.layers(self.stem(img * 2 - 1))
        if self.film is not None and cond is not None:
            scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
            x = torch.relu(x * (1 + scale) + shift)
        return self.proj(self.pool(x))


# The scale (m) of goal errors in the auxiliary loss: a 1 cm miss costs 0.04.
GOAL_ERROR_SCALE = 0.05


@dataclass
class ObservationEncoderConfig:
    cameras: tuple[str, ...] = ("front",)
    state_dim: int = 7
    n_tasks: int = 1
    use_goal: bool = True
    token_dim: int = 128
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    # Tasks (command texts) whose goal the policy finds in the camera images: for them a
    # head on the image features and the command predicts the goal point, which feeds the
    # goal token in place of a given one. Where the dataset holds that point (the simulator
    # knows where each cube is) it supervises the head (an auxiliary loss, training only);
    # where it is zeros (a real robot's demos) the head learns through the action loss alone.
    image_goal_tasks: tuple[str, ...] = ()
    goal_loss_weight: float = 1.0
    # False: the images reach the action head only through the goal point found in them
    # (no camera token). The head then acts on state + goal + command, as the state-goal
    # policy does, and camera lag or arm pixels cannot jitter it.
    image_tokens: bool = True


class ObservationEncoder(nn.Module):
    """Batch dict -> (cond (B, n_tokens * token_dim), tokens (B, n_tokens, token_dim), goal).

    One token per camera, one for the state, one for the task and one for the goal.
    ``goal`` (B, 3) is the goal point the token was made from: the given one, or for
    ``image_goal_tasks`` the one predicted from the images.
    """

    def __init__(self, cfg: ObservationEncoderConfig, tasks: list[str] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.token_dim
        self.images = nn.ModuleDict({cam: ImageEncoder(cfg.image, d) for cam in cfg.cameras})
        self.image_proj = nn.ModuleDict(
            {cam: nn.Linear(cfg.image.out_dim, d) for cam in cfg.cameras if cfg.image_tokens}
        )
        self.state = nn.Sequential(nn.Linear(cfg.state_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.task = nn.Embedding(max(cfg.n_tasks, 1), d)
        self.goal = nn.Sequential(nn.Linear(3, d), nn.SiLU(), nn.Linear(d, d)) if cfg.use_goal else None
        tasks = list(tasks or [])
        unknown = [g for g in cfg.image_goal_tasks if g not in tasks]
        if unknown:
            raise ValueError(f"image_goal_tasks {unknown} are not among the policy's tasks {tasks}")
        if cfg.image_goal_tasks and not (cfg.cameras and cfg.use_goal):
            raise ValueError("image_goal_tasks needs cameras and use_goal")
        if cfg.cameras and not cfg.image_tokens and not cfg.image_goal_tasks:
            raise ValueError("image_tokens=False needs image_goal_tasks, or the images would go unused")
        # Per task index: True where the goal comes from the images.
        self.register_buffer(
            "goal_from_images",
            torch.tensor([t in cfg.image_goal_tasks for t in tasks] or [False], dtype=torch.bool),
            persistent=False,
        )
        self.goal_head = (
            nn.Sequential(
                nn.Linear(cfg.image.out_dim * len(cfg.cameras) + d, 2 * d),
                nn.SiLU(),
                nn.Linear(2 * d, 3),
            )
            if cfg.image_goal_tasks
            else None
        )

    @property
    def n_tokens(self) -> int:
        cameras = len(self.cfg.cameras) if self.cfg.image_tokens else 0
        return cameras + 2 + (1 if self.cfg.use_goal else 0)

    @property
    def cond_dim(self) -> int:
        return self.n_tokens * self.cfg.token_dim

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor | None]:
        state = batch[STATE]
        b = state.shape[0]
        task_index = batch[TASK_INDEX].long().reshape(b)
        task = self.task(task_index)
        tokens, features = [], []
        for cam, enc in self.images.items():
            features.append(enc(batch[image_key(cam)], task))
            if cam in self.image_proj:
                tokens.append(self.image_proj[cam](features[-1]))
        tokens.append(self.state(state))
        tokens.append(task)
        goal = None
        if self.goal is not None:
            goal = batch[GOAL].reshape(b, 3)
            if self.goal_head is not None:
                predicted = self.goal_head(torch.cat([*features, task], dim=-1))
                goal = torch.where(self.goal_from_images[task_index][:, None], predicted, goal)
            tokens.append(self.goal(goal))
        stacked = torch.stack(tokens, dim=1)
        return stacked.flatten(1), stacked, goal

    def goal_loss(self, batch: dict[str, Tensor], goal: Tensor | None) -> Tensor | float:
        """Auxiliary loss of the predicted goals against the labels the batch holds (0 if none)."""
        if self.goal_head is None or goal is None:
            return 0.0
        label = batch[GOAL].reshape(goal.shape)
        task_index = batch[TASK_INDEX].long().reshape(-1)
        mask = self.goal_from_images[task_index] & (label.abs().sum(-1) > 0)
        if not mask.any():
            return 0.0
        err = ((goal - label) / GOAL_ERROR_SCALE)[mask]
        return self.cfg.goal_loss_weight * err.pow(2).sum(-1).mean()
