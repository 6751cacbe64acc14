"""A ResNet-18 trunk in torchvision's key layout, to start image encoders from pretrained weights.

Few demos on a real robot train a from-scratch CNN poorly; an ImageNet ResNet-18 is the
usual start (Diffusion Policy, LeRobot). torchvision is not a dependency here (it breaks
beside this torch build), so the trunk is rebuilt in plain torch with torchvision's module
names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0`` ...), and weights
load from a local safetensors file saved from ``torchvision.models.resnet18`` (its ``fc.*``
keys are ignored). BatchNorm statistics stay frozen: small robot batches would wreck them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WIDTHS = (64, 128, 256, 512)


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always normalises with its loaded statistics (train or eval)."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = FrozenBatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), FrozenBatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18Trunk(nn.Module):
    """(B, 3, h, w) in [0, 1] -> (B, C, h / 2^(stages + 1), w / ...), C = 64 * 2^(stages - 1).

    stages=3 stops after layer3 (stride 16: a 14x14 map of a 224x224 image, 256 channels),
    fine enough for spatial-softmax keypoints.
    """

    def __init__(self, stages: int = 3) -> None:
        super().__init__()
        if not 1 <= stages <= 4:
            raise ValueError(f"stages must be 1..4, got {stages}")
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i in range(stages):
            cout = WIDTHS[i]
            blocks = nn.Sequential(Block(cin, cout, 1 if i == 0 else 2), Block(cout, cout, 1))
            setattr(self, f"layer{i + 1}", blocks)
            cin = cout
        self.stages, self.out_channels = stages, cin
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, img: Tensor) -> Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1((img - self.mean) / self.std))))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def load_pretrained(self, path: str | Path) -> None:
        """Load torchvision-layout ResNet-18 weights; a file that does not match says how."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights {path} not found")
        try:
            weights = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for a bad header
            raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
        own = self.state_dict()
        wanted = {k for k in own if not k.endswith("num_batches_tracked")}
        given = {k for k in weights if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
        deeper = tuple(f"layer{i}." for i in range(self.stages + 1, 5))  # stages this trunk stops before
        given = {k for k in given if not k.startswith(deeper)}
        missing, unexpected = sorted(wanted - given), sorted(given - wanted)
        shapes = [
            f"{k}: {tuple(weights[k].shape)} for {tuple(own[k].shape)}"
            for k in sorted(wanted & given)
            if weights[k].shape != own[k].shape
        ]
        if missing or unexpected or shapes:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
            if shapes:
                parts.append(f"{len(shapes)} of another shape (e.g. {'; '.join(shapes[:2])})")
            raise ValueError(
                f"{path} does not hold a ResNet-18 in torchvision's key layout: {', '.join(parts)}"
            )
        self.load_state_dict({k: weights[k] for k in wanted}, strict=False)
