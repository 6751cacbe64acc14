"""Image augmentation for training: random shifts and brightness / contrast jitter.

A camera on a real robot is never exactly where it was during the demos, and the light
changes through the day. Shifting every training image by a few pixels (replicate-pad and
crop, as DrQ does) makes pixel positions alone useless, so the encoder learns where an
object is relative to what it sees around it (the table, the arm's base); jittering
brightness and contrast does the same for exposure. Hue is left alone: the commands name
colours. Applied to the training batches only, never at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from flow_policy_node.observation import IMAGE_PREFIX


@dataclass
class AugmentConfig:
    shift_px: int = 0  # largest shift (pixels) in each direction; 0: none
    brightness: float = 0.0  # largest relative change of the image's brightness; 0: none
    contrast: float = 0.0  # largest relative change of the image's contrast; 0: none

    @property
    def active(self) -> bool:
        return bool(self.shift_px or self.brightness or self.contrast)


def random_shift(img: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """(B, C, H, W) -> (B, C, H, W): each image moved by its own whole-pixel offset within
    +-``pad``, the border repeated into the gap."""
    b, _, h, w = img.shape
    padded = F.pad(img, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device="cpu").tolist()
    return torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets)])


def colour_jitter(
    img: Tensor, brightness: float, contrast: float, generator: torch.Generator | None = None
) -> Tensor:
    """(B, C, H, W) in [0, 1] -> the same, each image's brightness scaled within
    1 +- ``brightness`` and its contrast about its mean within 1 +- ``contrast``."""
    b = img.shape[0]
    u = torch.rand(2, b, 1, 1, 1, generator=generator).to(img) * 2 - 1
    out = img * (1 + brightness * u[0])
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * (1 + contrast * u[1]) + mean).clamp(0, 1)


def augment(batch: dict[str, Tensor], cfg: AugmentConfig, generator: torch.Generator | None = None):
    """A copy of ``batch`` with every camera image augmented (other entries shared)."""
    if not cfg.active:
        return batch
    out = dict(batch)
    for key, img in batch.items():
        if not key.startswith(IMAGE_PREFIX):
            continue
        if cfg.shift_px:
            img = random_shift(img, cfg.shift_px, generator)
        if cfg.brightness or cfg.contrast:
            img = colour_jitter(img, cfg.brightness, cfg.contrast, generator)
        out[key] = img
    return out
