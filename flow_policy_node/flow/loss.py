"""Conditional flow matching loss with a mask for padded chunk steps."""

from __future__ import annotations

from torch import Tensor


def masked_mse(pred: Tensor, target: Tensor, is_pad: Tensor | None = None) -> Tensor:
    """Mean squared error over valid chunk steps.

    pred, target: (B, H, D); is_pad: (B, H) bool, True where the step lies past the
    episode end (those steps carry no information and must not be learned).
    """
    err = (pred - target) ** 2
    if is_pad is None:
        return err.mean()
    valid = (~is_pad).unsqueeze(-1).to(err.dtype)
    return (err * valid).sum() / (valid.sum() * err.shape[-1]).clamp_min(1.0)
