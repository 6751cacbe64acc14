"""Camera frame to model input: OpenCV (flow_policy_node.images) vs the PIL path it replaced.

    python benchmarks/images.py   # writes benchmarks/results/images.json

A 640x480 bgr8 sensor_msgs/Image (a typical camera driver's) converted to RGB and resized
to the model's 96x128, as the policy node does for every frame. The PIL path is the one
the node used before (numpy channel flip, PIL bilinear resize).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import Image

from flow_policy_node.images import image_to_rgb, resize_rgb

RESULTS = Path(__file__).parent / "results"
SIZE = (96, 128)


def pil_path(msg: Image) -> np.ndarray:
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    rgb = np.ascontiguousarray(rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)[:, :, ::-1])
    return np.asarray(PILImage.fromarray(rgb).resize((SIZE[1], SIZE[0]), PILImage.BILINEAR))


def opencv_path(msg: Image) -> np.ndarray:
    return resize_rgb(image_to_rgb(msg), SIZE)


def time_ms(fn, msg: Image, n: int = 300) -> float:
    for _ in range(20):
        fn(msg)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn(msg)
        times.append(1e3 * (time.perf_counter() - t))
    return float(np.median(times))


def main() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    msg = Image(height=480, width=640, encoding="bgr8", step=640 * 3, data=frame.tobytes())
    a, b = opencv_path(msg).astype(float), pil_path(msg).astype(float)
    opencv_ms, pil_ms = time_ms(opencv_path, msg), time_ms(pil_path, msg)
    results = {
        "frame": "640x480 bgr8 -> 96x128 rgb",
        "opencv_ms": round(opencv_ms, 3),
        "pil_ms": round(pil_ms, 3),
        "speedup": round(pil_ms / opencv_ms, 2),
        "mean_abs_difference": round(float(np.abs(a - b).mean()), 2),  # area vs bilinear filters
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "images.json").write_text(json.dumps(results, indent=2) + "\n")
    print(results)


if __name__ == "__main__":
    main()
