"""The scripted expert that plays the teleoperator.

It plans TCP waypoints from the privileged scene state (where the cubes, goal and post
are), moves between them along minimum-jerk profiles, and converts each control tick's
TCP target into joint targets with damped-least-squares IK (warm-started from the last
target, so joint motion is smooth). Waypoints and durations carry a little random
variation, as a human's would; for the obstacle it passes in front of or behind the post by a coin flip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flow_policy_node.sim.env import ArmEnv
from flow_policy_node.sim.tasks import CUBE_HALF

OPEN, CLOSED = 0.04, 0.0


@dataclass
class Segment:
    tcp: np.ndarray  # (3,) target at the end of the segment
    gripper: float  # finger target at the end
    duration: float  # s


def min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


class ScriptedExpert:
    def __init__(self, env: ArmEnv, seed: int) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed + 7919)
        self.segments = self._plan()
        self.t = 0.0
        self.q = env.joint_targets()
        self.start_tcp = env.tcp_position()
        self.start_grip = float(self.q[6])

    @property
    def side(self) -> int:
        return self.env.state.layout.side

    def _jitter(self, p: np.ndarray, scale: float = 0.004) -> np.ndarray:
        return p + self.rng.normal(0, scale, 3)

    def _dur(self, d: float) -> float:
        return d * self.rng.uniform(0.85, 1.15)

    def _plan(self) -> list[Segment]:
        st = self.env.state
        name = st.task.name
        if name.startswith("pick_"):
            cube = self.env.cube_position(name.removeprefix("pick_"))
            above = np.array([cube[0], cube[1], 0.13])
            grasp = np.array([cube[0], cube[1], CUBE_HALF + 0.004])
            return [
                Segment(self._jitter(above), OPEN, self._dur(1.6)),
                Segment(grasp + np.array([0, 0, self.rng.normal(0, 0.002)]), OPEN, self._dur(1.0)),
                Segment(grasp, CLOSED, 0.6),
                Segment(self._jitter(np.array([cube[0], cube[1], 0.2])), CLOSED, self._dur(1.2)),
                Segment(np.array([cube[0], cube[1], 0.2]), CLOSED, 1.0),
            ]
        goal = st.layout.goal
        if name == "reach":
            return [Segment(goal.copy(), OPEN, self._dur(2.0)), Segment(goal.copy(), OPEN, 1.0)]
        post = st.layout.obstacle
        start = self.env.tcp_position()
        height = (start[2] + goal[2]) / 2
        via = self._jitter(np.array([post[0] + self.side * 0.11, post[1], height]), 0.005)
        return [
            Segment(via, OPEN, self._dur(1.4)),
            Segment(goal.copy(), OPEN, self._dur(1.4)),
            Segment(goal.copy(), OPEN, 1.0),
        ]

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
