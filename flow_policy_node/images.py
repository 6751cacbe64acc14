"""The one image conversion module: ROS image messages -> RGB arrays, and resizing.

Used by the policy node (live messages) and the converter (messages read from bags). It
never imports rclpy: messages are duck-typed (``height``, ``width``, ``encoding``, ``step``,
``is_bigendian``, ``data`` for sensor_msgs/Image; ``format`` and ``data`` for
CompressedImage), so rclpy messages and rosbags' deserialised ones both work. OpenCV does
the decoding, colour conversion and resizing, with cv_bridge's encoding semantics:

- colour: rgb8, bgr8, rgba8, bgra8 (alpha dropped), mono8 (grey replicated);
- 16-bit: mono16 / 16UC1 scaled to 8 bits (value / 256), as cv_bridge converts to rgb8;
- Bayer: bayer_rggb8, bayer_bggr8, bayer_gbrg8, bayer_grbg8 demosaiced by OpenCV;
- depth 32FC1 has no colour meaning: refused for an RGB policy input.

Problems raise :class:`ImageError` with a message a user can act on.
"""

from __future__ import annotations

import cv2
import numpy as np


class ImageError(ValueError):
    """An image that cannot be used; the message says why."""


# encoding -> (numpy dtype, channels, OpenCV conversion to RGB or None)
ENCODINGS: dict[str, tuple[str, int, int | None]] = {
    "rgb8": ("uint8", 3, None),
    "bgr8": ("uint8", 3, cv2.COLOR_BGR2RGB),
    "rgba8": ("uint8", 4, cv2.COLOR_RGBA2RGB),
    "bgra8": ("uint8", 4, cv2.COLOR_BGRA2RGB),
    "mono8": ("uint8", 1, cv2.COLOR_GRAY2RGB),
    "8uc1": ("uint8", 1, cv2.COLOR_GRAY2RGB),
    "8uc3": ("uint8", 3, cv2.COLOR_BGR2RGB),  # cv_bridge: 8UC3 is OpenCV's BGR
    "mono16": ("uint16", 1, cv2.COLOR_GRAY2RGB),
    "16uc1": ("uint16", 1, cv2.COLOR_GRAY2RGB),
    # OpenCV names Bayer patterns from the second row: ROS rggb is OpenCV BG (as cv_bridge maps them)
    "bayer_rggb8": ("uint8", 1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": ("uint8", 1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": ("uint8", 1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": ("uint8", 1, cv2.COLOR_BayerGB2RGB),
}
REFUSED = {"32fc1": "a depth image (32FC1) has no colour to give an RGB policy input"}


def image_to_rgb(msg) -> np.ndarray:
    """(h, w, 3) uint8 RGB from a sensor_msgs/Image-like message."""
    enc = str(msg.encoding).lower()
    if enc in REFUSED:
        raise ImageError(f"encoding {msg.encoding!r}: {REFUSED[enc]}")
    if enc not in ENCODINGS:
        raise ImageError(f"unsupported image encoding {msg.encoding!r}; supported: {sorted(ENCODINGS)}")
    dtype, channels, code = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype).itemsize
    if h <= 0 or w <= 0:
        raise ImageError(f"empty image {w}x{h}")
    if step < w * channels * itemsize:
        raise ImageError(
            f"step {step} B is shorter than a row of {w} {enc} pixels ({w * channels * itemsize} B)"
        )
    data = bytes(msg.data)
    if len(data) < step * h:
        raise ImageError(
            f"image data too short: {len(data)} B for {w}x{h} {enc} with step {step} (need {step * h})"
        )
    rows = np.frombuffer(data, np.uint8, count=step * h).reshape(h, step)
    pixels = rows[:, : w * channels * itemsize]
    order = ">" if getattr(msg, "is_bigendian", False) else "<"
    img = np.ascontiguousarray(pixels).view(np.dtype(dtype).newbyteorder(order)).reshape(h, w, channels)
    if itemsize == 2:  # cv_bridge's 16 -> 8 bit conversion for colour output: value / 256
        img = (img.astype(np.uint16) >> 8).astype(np.uint8)
    if code is None:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(img if channels > 1 else img[:, :, 0], code)


def compressed_to_rgb(msg) -> np.ndarray:
    """(h, w, 3) uint8 RGB from a CompressedImage-like message (jpeg, png, ...)."""
    buf = np.frombuffer(bytes(msg.data), np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if len(buf) else None
    if bgr is None:
        raise ImageError(f"cannot decode CompressedImage (format {msg.format!r}, {len(buf)} B)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def size_problem(
    height: int, width: int, model_size: tuple[int, int], max_aspect_change: float, max_upscale: float = 2.0
) -> str | None:
    """Why an image of ``height`` x ``width`` must not be resized to ``model_size``, or None.

    Resizing keeps what the camera sees; changing the aspect ratio by more than
    ``max_aspect_change`` (relative) would distort it beyond what the policy was trained
    on, and upscaling more than ``max_upscale`` times invents detail the camera never saw
    (a 1x1 frame blown up to 96x96 is not an observation).
    """
    if height <= 0 or width <= 0:
        return f"empty image {width}x{height}"
    have, want = width / height, model_size[1] / model_size[0]
    change = abs(have / want - 1.0)
    if change > max_aspect_change:
        return (
            f"{width}x{height} images (aspect {have:.2f}) cannot be resized to the checkpoint's "
            f"{model_size[1]}x{model_size[0]} (aspect {want:.2f}) without distorting them by {change:.0%} "
            f"(max_aspect_change {max_aspect_change:.0%}); refusing them"
        )
    scale = max(model_size[0] / height, model_size[1] / width)
    if scale > max_upscale:
        return (
            f"{width}x{height} images are too small for the checkpoint's {model_size[1]}x{model_size[0]}: "
            f"they would be upscaled {scale:.1f}x (at most {max_upscale:g}x); refusing them"
        )
    return None


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 resized to ``size`` = (height, width): area averaging down, bilinear up."""
    if rgb.shape[:2] == tuple(size):
        return rgb
    down = size[0] < rgb.shape[0] or size[1] < rgb.shape[1]
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
