"""Image operations shared by the policy node and the dataset converter (no ROS here)."""

from __future__ import annotations

import numpy as np


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 resized to ``size`` = (height, width), bilinear (PIL)."""
    if rgb.shape[:2] == tuple(size):
        return rgb
    from PIL import Image as PILImage

    return np.asarray(PILImage.fromarray(rgb).resize((size[1], size[0]), PILImage.BILINEAR))
