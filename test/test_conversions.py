"""The message <-> numpy conversion module."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image, JointState

from flow_policy_node.images import ImageError, compressed_to_rgb, image_to_rgb, resize_rgb, size_problem
from flow_policy_node.ros.conversions import (
    ConversionError,
    joint_positions,
    rgb_to_image,
    sec_to_duration,
    sec_to_stamp,
    stamp_to_sec,
    trajectory_arrays,
    trajectory_msg,
)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_stamps_round_trip_to_the_nanosecond(t: float) -> None:
    stamp = sec_to_stamp(t)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert abs(stamp_to_sec(stamp) - t) < 2e-9 * max(1.0, t / 1e6) + 1e-9
    assert sec_to_stamp(3.0000000000000004).sec == 3 and sec_to_stamp(2.9999999999).sec == 3
    d = sec_to_duration(t)
    assert abs(d.sec + d.nanosec * 1e-9 - t) < 1e-6


def test_joint_states_are_matched_by_name() -> None:
    msg = JointState(name=["b", "a", "c"], position=[2.0, 1.0, 3.0])
    np.testing.assert_array_equal(joint_positions(msg, ["a", "b"]), [1.0, 2.0])
    with pytest.raises(ConversionError, match=r"lacks joints \['z'\]"):
        joint_positions(msg, ["a", "z"])
    with pytest.raises(ConversionError, match="non-finite"):
        joint_positions(JointState(name=["a"], position=[float("nan")]), ["a"])


def test_images_convert_from_every_supported_encoding() -> None:
    """cv_bridge's semantics, checked against arrays built by hand (not by OpenCV)."""
    import cv2

    rgb = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    msg = rgb_to_image(rgb)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)

    def image(encoding: str, pixels: np.ndarray, pad: int = 0, bigendian: bool = False) -> Image:
        rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
        rows = np.hstack([rows, np.zeros((rows.shape[0], pad), np.uint8)])  # step > row bytes
        return Image(
            height=pixels.shape[0],
            width=pixels.shape[1],
            encoding=encoding,
            step=rows.shape[1],
            is_bigendian=bigendian,
            data=rows.tobytes(),
        )

    np.testing.assert_array_equal(image_to_rgb(image("bgr8", rgb[:, :, ::-1].copy(), pad=3)), rgb)
    alpha = np.full((4, 6, 1), 7, np.uint8)
    np.testing.assert_array_equal(image_to_rgb(image("rgba8", np.concatenate([rgb, alpha], 2))), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], alpha], 2)
    np.testing.assert_array_equal(image_to_rgb(image("bgra8", bgra)), rgb)
    grey = rgb[:, :, 0].copy()
    np.testing.assert_array_equal(image_to_rgb(image("mono8", grey)), np.repeat(grey[:, :, None], 3, 2))
    deep = (grey.astype(np.uint16) * 256 + 255).astype("<u2")
    np.testing.assert_array_equal(image_to_rgb(image("mono16", deep)), np.repeat(grey[:, :, None], 3, 2))
    big = deep.astype(">u2")
    np.testing.assert_array_equal(image_to_rgb(image("16UC1", big, bigendian=True))[:, :, 0], grey)
    # Bayer RGGB: a uniform colour mosaicked by hand demosaics back to that colour.
    mosaic = np.zeros((8, 8), np.uint8)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 200, 100, 100, 50
    out = image_to_rgb(image("bayer_rggb8", mosaic))
    np.testing.assert_allclose(out[2:-2, 2:-2].reshape(-1, 3).mean(0), [200, 100, 50], atol=2)
    png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format="png", data=png)), rgb)


def test_bad_images_are_refused_with_a_reason() -> None:
    with pytest.raises(ImageError, match="unsupported image encoding 'yuv422'"):
        image_to_rgb(Image(height=1, width=1, encoding="yuv422", step=2, data=b"\0\0"))
    with pytest.raises(ImageError, match="depth image"):
        image_to_rgb(Image(height=1, width=1, encoding="32FC1", step=4, data=b"\0" * 4))
    with pytest.raises(ImageError, match="too short"):
        image_to_rgb(Image(height=4, width=4, encoding="rgb8", step=12, data=b"\0" * 40))
    with pytest.raises(ImageError, match="step 8 B is shorter"):
        image_to_rgb(Image(height=4, width=4, encoding="rgb8", step=8, data=b"\0" * 48))
    with pytest.raises(ImageError, match="cannot decode"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"))
    # Size rules: a 1x1 frame is not an observation for a 96x96 policy; 2x upscaling is.
    assert "too small" in size_problem(1, 1, (96, 96), 0.1)
    assert size_problem(48, 48, (96, 96), 0.1) is None
    assert size_problem(480, 640, (96, 128), 0.1) is None
    assert "distorting" in size_problem(32, 64, (32, 32), 0.1)
    assert resize_rgb(np.zeros((480, 640, 3), np.uint8), (96, 128)).shape == (96, 128, 3)


def test_trajectories_round_trip_and_validate() -> None:
    names = ["a", "b"]
    pos = np.array([[0.0, 1.0], [0.5, 1.5]])
    times, out = trajectory_arrays(trajectory_msg(names, pos, dt=0.1), ["b", "a", "c"])
    np.testing.assert_allclose(times, [0.1, 0.2])
    np.testing.assert_allclose(out[:, :2], pos[:, ::-1])
    assert np.isnan(out[:, 2]).all()  # a joint the trajectory does not name
    with pytest.raises(ConversionError, match="unknown joints"):
        trajectory_arrays(trajectory_msg(["a", "x"], pos, dt=0.1), names)
    with pytest.raises(ConversionError, match="non-finite"):
        trajectory_msg(names, np.array([[np.nan, 0.0]]), dt=0.1)
