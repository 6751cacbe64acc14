"""JointTrajectoryController semantics (control/jtc.py) without ROS: the model the sim node
executes trajectories with and the converter rebuilds commanded actions with."""

from __future__ import annotations

import numpy as np
import pytest

from flow_policy_node.control.jtc import TrajectoryExecutor, interp
from flow_policy_node.data.bags import Stream, Trajectory
from flow_policy_node.data.resample import commanded

NAN = np.nan


def test_interp_is_np_interp_per_joint_held_beyond_both_ends() -> None:
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 1, 6))
    values = rng.normal(size=(6, 3))
    t = np.concatenate([rng.uniform(-0.5, 1.5, 50), times])
    want = np.stack([np.interp(t, times, values[:, j]) for j in range(3)], axis=1)
    np.testing.assert_allclose(interp(t, times, values), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(interp(t[0], times, values), want[0], rtol=0, atol=1e-12)
    assert interp(0.3, times, values).shape == (3,)
    np.testing.assert_array_equal(interp(np.array([-1.0, 5.0]), [0.0], values[:1]), values[[0, 0]])


def test_two_points_at_one_time_are_a_step_to_the_later() -> None:
    values = np.array([[0.0], [1.0], [3.0]])
    times = np.array([0.0, 0.0, 1.0])
    assert interp(-0.1, times, values)[0] == 0.0
    assert interp(0.0, times, values)[0] == 1.0
    assert interp(0.5, times, values)[0] == 2.0


def test_nothing_commanded_keeps_the_current_state() -> None:
    jtc = TrajectoryExecutor()
    np.testing.assert_array_equal(jtc.target(3.0, np.array([0.1, 0.2])), [0.1, 0.2])


def test_interpolates_from_the_start_state_and_holds_the_last_point() -> None:
    jtc = TrajectoryExecutor()
    jtc.accept(1.0, np.array([0.5, 1.0]), np.array([[1.0, 2.0], [2.0, 0.0]]), current=np.zeros(2))
    np.testing.assert_allclose(jtc.target(1.0, np.full(2, 9.0)), [0.0, 0.0])  # the state at its start
    np.testing.assert_allclose(jtc.target(1.25, np.full(2, 9.0)), [0.5, 1.0])
    np.testing.assert_allclose(jtc.target(1.75, np.full(2, 9.0)), [1.5, 1.0])
    np.testing.assert_allclose(jtc.target(5.0, np.full(2, 9.0)), [2.0, 0.0])  # held


def test_a_new_trajectory_replaces_the_running_one_from_where_it_stood() -> None:
    jtc = TrajectoryExecutor()
    jtc.accept(0.0, np.array([1.0]), np.array([[1.0]]), current=np.zeros(1))
    jtc.target(0.4, np.zeros(1))
    jtc.accept(0.5, np.array([0.5]), np.array([[-1.0]]), current=np.zeros(1))
    # No jump at the switch: the new one starts at the old one's target then (0.5).
    np.testing.assert_allclose(jtc.target(0.5, np.zeros(1)), [0.5])
    np.testing.assert_allclose(jtc.target(0.75, np.zeros(1)), [-0.25])
    np.testing.assert_allclose(jtc.target(2.0, np.zeros(1)), [-1.0])  # the old one's point is gone
    assert len(jtc.queue) == 1


def test_a_trajectory_starting_in_the_future_waits_and_an_earlier_one_drops_it() -> None:
    jtc = TrajectoryExecutor()
    jtc.accept(0.0, np.array([1.0]), np.array([[1.0]]), current=np.zeros(1))
    jtc.accept(2.0, np.array([1.0]), np.array([[5.0]]), current=np.zeros(1))
    np.testing.assert_allclose(jtc.target(0.5, np.zeros(1)), [0.5])  # the first still runs
    np.testing.assert_allclose(jtc.target(1.5, np.zeros(1)), [1.0])  # and holds its end
    np.testing.assert_allclose(jtc.target(2.5, np.zeros(1)), [3.0])  # the queued one from 1.0
    jtc.clear()
    jtc.accept(0.0, np.array([1.0]), np.array([[1.0]]), current=np.zeros(1))
    jtc.accept(2.0, np.array([1.0]), np.array([[5.0]]), current=np.zeros(1))
    jtc.accept(1.5, np.array([1.0]), np.array([[-1.0]]), current=np.zeros(1))
    np.testing.assert_allclose(jtc.target(3.0, np.zeros(1)), [-1.0])  # the one at 2.0 never runs


def test_joints_a_trajectory_does_not_name_hold_their_target() -> None:
    jtc = TrajectoryExecutor()
    jtc.accept(0.0, np.array([1.0]), np.array([[1.0, 1.0]]), current=np.zeros(2))
    jtc.target(0.5, np.zeros(2))
    jtc.accept(0.5, np.array([1.0]), np.array([[NAN, -1.0]]), current=np.full(2, 7.0))
    np.testing.assert_allclose(jtc.target(1.0, np.zeros(2)), [0.5, -0.25])
    np.testing.assert_allclose(jtc.target(9.0, np.zeros(2)), [0.5, -1.0])


def test_limits_name_the_joint_and_ignore_joints_not_commanded() -> None:
    jtc = TrajectoryExecutor(np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    assert jtc.check_limits(np.array([[0.5, NAN], [1.0, NAN]]), ["a", "b"]) is None
    reason = jtc.check_limits(np.array([[0.5, NAN], [0.0, -1.5]]), ["a", "b"])
    assert reason is not None and "joint b" in reason
    assert TrajectoryExecutor().check_limits(np.array([[50.0, 50.0]]), ["a", "b"]) is None


@pytest.mark.parametrize("partial", [False, True])
def test_converter_rebuilds_what_the_controller_commanded(partial: bool) -> None:
    """Recorded trajectories -> the targets the controller held at each tick."""
    measured = Stream()
    for k in range(200):
        measured.add(k / 100, np.array([k / 100, -k / 100]))
    commands = Stream()
    commands.add(0.2, Trajectory(np.array([0.5]), np.array([[1.0, 1.0]])))
    commands.add(0.5, Trajectory(np.array([0.5]), np.array([[NAN if partial else 3.0, -1.0]])))
    times = np.array([0.0, 0.1, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5])
    states = np.stack([times, -times], axis=1)
    first = 0.68 if partial else 3.0
    want = [
        [0.0, 0.0],  # before any command: the state at the tick
        [0.1, -0.1],
        [0.36, 0.04],  # from the measured state at its start (0.2, -0.2) towards (1, 1)
        [0.52, 0.28],
        [0.68, 0.52],  # replaced at 0.5, from where the first stood
        [(0.68 + first) / 2, -0.24],
        [first, -1.0],  # a joint the second does not name holds its target
        [first, -1.0],
    ]
    np.testing.assert_allclose(commanded(commands, measured, times, states), want, atol=1e-12)
