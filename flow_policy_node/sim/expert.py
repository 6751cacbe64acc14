"""The scripted expert that plays the teleoperator.

The episode's task plans TCP waypoints from the privileged scene state (where the cubes,
goal and post are; :meth:`flow_policy_node.tasks.Task.plan`), with a little random variation
in waypoints and durations, as a human's would have. The expert moves between them along
minimum-jerk profiles and converts each control tick's TCP target into joint targets with
damped-least-squares IK (warm-started from the last target, so joint motion is smooth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flow_policy_node.sim.env import ArmEnv
from flow_policy_node.tasks import Segment


def min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


class ScriptedExpert:
    def __init__(self, env: ArmEnv, seed: int) -> None:
        self.env = env
        self.segments: list[Segment] = env.task.plan(env, np.random.default_rng(seed + 7919))
        self.t = 0.0
        self.q = env.joint_targets()
        self.start_tcp = env.tcp_position()
        self.start_grip = float(self.q[6])

    @property
    def side(self) -> int:
        return self.env.layout.side

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def done(self) -> bool:
        return self.t >= self.duration

    def act(self) -> np.ndarray:
        """Joint targets (D,) for the next control tick (1/fps s ahead)."""
        self.t += 1.0 / self.env.config.fps
        start_tcp, start_grip, t0 = self.start_tcp, self.start_grip, 0.0
        tcp, grip = start_tcp, start_grip
        for seg in self.segments:
            if self.t <= t0 + seg.duration:
                s = min_jerk((self.t - t0) / seg.duration)
                tcp = start_tcp + s * (seg.tcp - start_tcp)
                grip = start_grip + s * (seg.gripper - start_grip)
                break
            start_tcp, start_grip, t0 = seg.tcp, seg.gripper, t0 + seg.duration
            tcp, grip = seg.tcp, seg.gripper
        self.q = np.append(self.env.ik.solve(tcp, self.q[:6], iters=20), grip)
        return self.q.copy()


@dataclass
class ExpertEpisode:
    success: bool
    steps: int
    side: int
    states: np.ndarray  # (T, D)
    actions: np.ndarray  # (T, D)
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> (T, h, w, 3) uint8


def run_expert_episode(
    env: ArmEnv, task: str, seed: int, max_steps: int = 120, cameras: tuple[str, ...] = ()
) -> ExpertEpisode:
    """One scripted demo; ``cameras``: frames to keep, each taken with the state it pairs with."""
    env.reset(task, seed)
    expert = ScriptedExpert(env, seed)
    states, actions = [], []
    images: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    while not expert.done() and len(actions) < max_steps:
        states.append(env.joint_positions())
        for cam, frames in images.items():
            frames.append(env.render(cam))
        action = expert.act()
        actions.append(action)
        env.step(action)
    return ExpertEpisode(
        env.success(),
        len(actions),
        expert.side,
        np.array(states),
        np.array(actions),
        {c: np.stack(f) for c, f in images.items()},
    )
