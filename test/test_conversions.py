"""The message <-> numpy conversion module."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sensor_msgs.msg import Image, JointState

from flow_policy_node.ros.conversions import (
    ConversionError,
    image_to_rgb,
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
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    msg = rgb_to_image(rgb)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    bgr = Image(height=4, width=5, encoding="bgr8", step=15, data=rgb[:, :, ::-1].tobytes())
    np.testing.assert_array_equal(image_to_rgb(bgr), rgb)
    mono = Image(height=4, width=5, encoding="mono8", step=5, data=rgb[:, :, 0].tobytes())
    assert image_to_rgb(mono).shape == (4, 5, 3)
    with pytest.raises(ConversionError, match="unsupported image encoding '16UC1'"):
        image_to_rgb(Image(height=1, width=1, encoding="16UC1", step=2, data=b"\0\0"))


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
