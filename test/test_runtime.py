"""The policy node's decisions without ROS: PolicyRuntime driven by a fake clock.

A real (tiny) checkpoint trained here, a clock the test moves, and a sink that records
what the node would publish and log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from language_model import GatedLoader, real_embedder
from policy_checkpoints import JOINTS, SIZE, TASKS, bright_image, train_step_checkpoint

from flow_policy_node.control.commands import LOADING, NOT_YET, Embedder, minilm_embedder
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.loading import load_runtime
from flow_policy_node.control.runtime import (
    DISABLED,
    HOLDING,
    IDLE,
    PREEMPTED,
    RUNNING,
    GoalOutcome,
    PolicyRuntime,
    Trajectory,
)

STATE = np.array([0.1, -0.2, 0.3, -0.1, 0.2, -0.3, 0.02])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return train_step_checkpoint(tmp_path_factory.mktemp("ckpt") / "step")


class Clock:
    """Seconds that move only when told to; ``per_call`` advances time on every reading
    (so a policy call between two readings appears to take that long)."""

    def __init__(self, t: float = 100.0, per_call: float = 0.0) -> None:
        self.t, self.per_call = t, per_call

    def __call__(self) -> float:
        t = self.t
        self.t += self.per_call
        return t


class Recorder:
    def __init__(self) -> None:
        self.trajectories: list[Trajectory] = []
        self.logs: list[tuple[str, str]] = []
        self.published = threading.Condition()

    def publish(self, trajectory: Trajectory) -> None:
        with self.published:
            self.trajectories.append(trajectory)
            self.published.notify_all()

    def wait_chunks(self, n: int, timeout: float = 60.0) -> bool:
        """Wait until ``n`` chunks (trajectories of more than one point) have been published."""
        with self.published:
            return self.published.wait_for(lambda: len(self.chunks()) >= n, timeout)

    def chunks(self) -> list[Trajectory]:
        return [t for t in self.trajectories if len(t.positions) > 1]

    def log(self, level: str, text: str) -> None:
        self.logs.append((level, text))


def make(
    checkpoint: Path, clock: Clock, embedder_loader: Callable[[], Embedder] = minilm_embedder, **overrides
) -> tuple[PolicyRuntime, Recorder]:
    params = {
        "checkpoint": str(checkpoint),
        "cameras": ["front"],
        "camera_topics": ["camera/front/image_raw"],
        "command_embedding": False,
        "seed": 0,
        **overrides,
    }
    sink = Recorder()
    return load_runtime(PolicyNodeConfig(**params), sink, clock, embedder_loader), sink


def observe(rt: PolicyRuntime, clock: Clock, state=STATE) -> None:
    """Fresh joint state and front image, stamped now."""
    rt.put_joints(np.asarray(state, np.float64), clock.t)
    rt.put_image("front", bright_image(1.0), clock.t, "camera/front/image_raw")


def fresh(rt: PolicyRuntime, clock: Clock, state=STATE) -> None:
    """A frame 10 ms later: a command acts only on frames taken after it."""
    clock.t += 0.01
    observe(rt, clock, state)


def test_nothing_moves_before_a_command_then_chunks_follow_the_observation(checkpoint) -> None:
    clock = Clock()
    rt, sink = make(checkpoint, clock)
    observe(rt, clock)
    assert not rt.step() and sink.trajectories == [] and rt.state() == IDLE
    assert rt.command(TASKS[0]).task == TASKS[0]
    # The frame from before the command may show the last episode (a reset moved the arm a
    # few ms ago): the first chunk waits for the next one.
    assert not rt.step() and sink.trajectories == []
    fresh(rt, clock)
    assert rt.step() and rt.state() == RUNNING
    traj = sink.trajectories[-1]
    assert traj.stamp == pytest.approx(clock.t - clock.per_call, abs=0.11)
    assert traj.positions.shape[1] == len(JOINTS) and np.all(np.isfinite(traj.positions))
    assert np.all(traj.positions >= rt.limits.lower) and np.all(traj.positions <= rt.limits.upper)
    # The step task ramps joint 1 up from the observed state.
    assert traj.positions[-1, 0] > STATE[0]
    # The same frame twice is not a new observation: no second chunk from it.
    assert not rt.step()


def test_stale_or_bad_observations_hold_once_and_say_why(checkpoint) -> None:
    clock = Clock()
    rt, sink = make(checkpoint, clock, max_observation_age=0.5)
    rt.command(TASKS[0])
    fresh(rt, clock)
    assert rt.step()
    clock.t += 2.0  # nothing new for 2 s
    assert not rt.step()
    assert rt.state() == HOLDING and "stale observations" in rt.holding_reason
    holds = [t for t in sink.trajectories if len(t.positions) == 1]
    assert len(holds) == 1 and np.all(holds[0].velocities == 0)  # one hold trajectory, at rest
    assert not rt.step() and len([t for t in sink.trajectories if len(t.positions) == 1]) == 1
    with pytest.raises(ValueError, match="without distorting"):
        rt.put_image("front", np.zeros((SIZE, 4 * SIZE, 3), np.uint8), clock.t, "camera/front/image_raw")
    observe(rt, clock)
    assert rt.step() and rt.state() == RUNNING
    assert any("resuming after" in text for _, text in sink.logs)


def test_late_chunks_are_counted_and_reported(checkpoint) -> None:
    # Every clock reading 0.5 s after the last: a chunk is ready 0.5 s after its observation,
    # beyond the budget of 4 steps at 10 Hz (0.4 s).
    clock = Clock(per_call=0.5)
    rt, sink = make(checkpoint, clock, execution_horizon=4)
    assert rt.timing.budget_ms == pytest.approx(400.0)
    rt.command(TASKS[0])
    for _ in range(3):
        observe(rt, clock)
        rt.step()
    assert rt.timing.chunks >= 2 and rt.timing.late_chunks == rt.timing.chunks
    assert rt.timing.delay_ms > rt.timing.budget_ms
    late = [text for level, text in sink.logs if level == "warn" and "chunk late" in text]
    assert len(late) == 1 and "budget of 400 ms" in late[0]  # said once, not every chunk

    quick = Clock(per_call=0.001)
    rt, _ = make(checkpoint, quick, execution_horizon=4)
    rt.command(TASKS[0])
    observe(rt, quick)
    assert rt.step() and rt.timing.late_chunks == 0 and rt.timing.chunks == 1


def test_disable_reset_and_refused_commands_stop_motion(checkpoint) -> None:
    clock = Clock()
    rt, sink = make(checkpoint, clock)
    rt.command(TASKS[0])
    fresh(rt, clock)
    assert rt.step()
    rt.set_enabled(False)
    assert rt.state() == DISABLED and sink.trajectories[-1].positions.shape[0] == 1
    clock.t += 0.1
    observe(rt, clock)
    n = len(sink.trajectories)
    assert not rt.step() and len(sink.trajectories) == n
    rt.set_enabled(True)
    assert rt.set_goal(np.array([0.4, 0.0, 0.1]), "camera_link") != ""  # wrong frame: refused
    assert rt.set_goal(np.array([0.4, 0.0, 0.1]), "base_link") == "" and rt.cache.goal is not None
    rt.reset()
    assert rt.task == "" and rt.cache.goal is None and rt.state() == IDLE
    res = rt.command("open the door")
    assert res.task is None and rt.task == "" and "command refused" in rt.last_error


def test_a_chunk_inferred_before_a_reset_never_reaches_the_next_episode(checkpoint) -> None:
    """Reset and the same command again while a chunk is being inferred (the next episode of
    an evaluation, or a user repeating a command): that chunk comes from the last episode's
    pose and scene and must be dropped. It used to pass, because the task was the same; with
    300 ms of inference it cost 20-50 points of success through ROS (benchmarks/delay.py)."""
    clock = Clock()
    rt, sink = make(checkpoint, clock)
    real = rt.policy

    class NextEpisodeDuringInference:  # the real policy; the episode changes while it runs
        def __getattr__(self, name):
            return getattr(real, name)

        def predict(self, obs, **kwargs):
            rt.reset()
            rt.command(TASKS[0])
            return real.predict(obs, **kwargs)

    rt.command(TASKS[0])
    fresh(rt, clock)
    rt.policy = NextEpisodeDuringInference()
    assert not rt.step() and sink.chunks() == []
    rt.policy = real
    clock.t += 0.1
    observe(rt, clock, STATE + 0.05)  # the new episode's first observation
    assert rt.step() and len(sink.chunks()) == 1
    assert np.allclose(sink.chunks()[0].start, STATE + 0.05)  # from the new pose, not the old


def test_free_text_waits_for_the_language_model_and_configure_does_not(checkpoint) -> None:
    clock = Clock()
    loader = GatedLoader(real_embedder())
    rt, sink = make(checkpoint, clock, loader, command_embedding=True)
    assert loader.started.wait(10) and rt.resolver.free_text == LOADING  # configured before the model
    observe(rt, clock)
    res = rt.command("please grab the red block")
    assert res.how == "loading" and NOT_YET in rt.last_error and rt.task == "" and not rt.step()
    assert rt.command(TASKS[0]).task == TASKS[0]  # exact commands run meanwhile
    fresh(rt, clock)
    assert rt.step()
    rt.reset()
    rt.command("go to the target", wait_for_model=True)  # the node's initial command
    assert rt.task == "" and rt.last_error == ""
    loader.gate.set()
    assert rt.resolver.loaded.wait(60), rt.resolver.free_text_status()
    assert rt.task == TASKS[1], sink.logs
    assert any(level == "info" and "free-text commands available" in text for level, text in sink.logs)

    # A command given while the initial one waits wins over it.
    loader = GatedLoader(real_embedder())
    rt, _ = make(checkpoint, clock, loader, command_embedding=True)
    rt.command("go to the target", wait_for_model=True)
    rt.command(TASKS[0])
    loader.gate.set()
    assert rt.resolver.loaded.wait(60) and rt.task == TASKS[0]


class Outcomes(list):
    """A goal's ``done`` callback: keeps every outcome it is given."""

    def __call__(self, outcome: GoalOutcome) -> None:
        self.append(outcome)


def test_a_goal_ends_on_success_or_timeout_on_the_runtime_clock(checkpoint) -> None:
    clock = Clock()
    rt, sink = make(checkpoint, clock)
    done = Outcomes()
    assert rt.start_goal(TASKS[0], 4.0, done).task == TASKS[0]
    fresh(rt, clock)
    assert not rt.idle and rt.task == TASKS[0] and rt.step()
    clock.t += 0.99  # 1 s after the goal started
    observe(rt, clock)
    assert rt.step()
    progress = rt.goal_step()
    assert progress.task == TASKS[0] and progress.progress == pytest.approx(0.25) and progress.chunks == 2
    clock.t += 0.5
    rt.task_succeeded()
    assert done == [GoalOutcome(True, f"{TASKS[0]!r} succeeded after 1.5 s", 1.5, 2)]
    assert rt.goal_step() is None and rt.task == "" and rt.idle
    assert rt.holding_reason == "task succeeded" and len(sink.trajectories[-1].positions) == 1  # holds
    rt.task_succeeded()  # the latched success again, or one with no goal: nothing to end
    assert len(done) == 1

    timed_out = Outcomes()
    rt.start_goal(TASKS[1], 1.0, timed_out)
    clock.t += 0.9
    assert rt.goal_step().progress == pytest.approx(0.9) and timed_out == []
    clock.t += 0.2  # simulated seconds: the goal times out on the clock it was given
    assert rt.goal_step() is None
    assert timed_out[0].message == "timed out after 1.0 s without task success" and not timed_out[0].success
    assert timed_out[0].elapsed_s == pytest.approx(1.1) and rt.holding_reason == "goal timed out"
    assert rt.task == "" and rt.state() == IDLE

    endless = Outcomes()
    rt.start_goal(TASKS[1], 0.0, endless)  # no timeout: runs until told otherwise
    clock.t += 1e4
    assert rt.goal_step().progress == 0.0 and endless == []
    rt.abort_goal("canceled: holding", hold="goal canceled")
    assert endless[0].message == "canceled: holding" and rt.holding_reason == "goal canceled"
    assert rt.task == "" and rt.goal_step() is None


def test_a_goal_is_preempted_by_a_newer_goal_a_command_or_a_reset(checkpoint) -> None:
    clock = Clock()
    rt, _ = make(checkpoint, clock)
    first, second, third, fourth = Outcomes(), Outcomes(), Outcomes(), Outcomes()
    rt.start_goal(TASKS[0], 10.0, first)
    rt.start_goal(TASKS[1], 10.0, second)  # the newest goal wins
    assert [o.message for o in first] == [PREEMPTED] and not first[0].success
    assert second == [] and rt.task == TASKS[1] and rt.goal_step().task == TASKS[1]
    rt.command(TASKS[0])  # a command on the topic replaces the goal, and runs
    assert [o.message for o in second] == [PREEMPTED] and rt.task == TASKS[0]
    rt.start_goal(TASKS[1], 10.0, third)
    rt.command("open the door")  # even a refused command: the goal's task no longer runs
    assert [o.message for o in third] == [PREEMPTED] and rt.task == ""
    rt.start_goal(TASKS[1], 10.0, fourth)
    rt.reset()
    assert [o.message for o in fourth] == [PREEMPTED] and rt.goal_step() is None
    # A goal whose command does not resolve never starts: nothing to end later.
    refused = Outcomes()
    res = rt.start_goal("open the door", 10.0, refused)
    assert res.task is None and "unknown command" in res.message and rt.goal_step() is None
    rt.reset()
    assert refused == [] and [len(o) for o in (first, second, third, fourth)] == [1, 1, 1, 1]


def test_the_inference_thread_runs_on_fresh_frames_and_survives_a_failure(checkpoint) -> None:
    clock = Clock()
    rt, sink = make(checkpoint, clock)
    rt.start_inference()
    try:
        rt.command(TASKS[0])
        fresh(rt, clock)  # a fresh primary frame wakes the thread
        assert sink.wait_chunks(1), sink.logs
        # A frame of the right size that the model cannot take (4 channels): the thread
        # holds, says why, and carries on with the next good frame.
        clock.t += 0.5
        rt.put_joints(STATE, clock.t)
        rt.put_image("front", np.zeros((SIZE, SIZE, 4), np.uint8), clock.t, "camera/front/image_raw")
        with sink.published:  # the hold trajectory
            failed = sink.published.wait_for(lambda: rt.holding_reason.startswith("inference failed"), 30)
        assert failed, sink.logs
        assert rt.state() == HOLDING and rt.last_error.startswith("inference failed")
        clock.t += 0.5
        observe(rt, clock)
        assert sink.wait_chunks(2), sink.logs
        assert rt.state() == RUNNING
    finally:
        rt.stop_inference()
    assert not any(t.name == "inference" for t in threading.enumerate())
