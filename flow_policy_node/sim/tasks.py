"""The one registry of tasks: names, command texts, randomised initial states, success.

pick_<colour>: "pick up the <colour> cube"; success: that cube lifted >= 5 cm, the others
               not (< 2 cm). The goal point is the cube's initial position (what a detector
               or an RViz click on /clicked_point provides).
reach:         "reach the point"; success: the TCP within 2 cm of a goal point.
obstacle:      "reach the goal around the obstacle"; a low post stands between start and goal;
               success: goal within 2 cm reached without ever touching the post. Expert
               demos pass left or right with equal probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CUBE_COLOURS = {"red": (0.85, 0.15, 0.12, 1), "green": (0.15, 0.7, 0.2, 1), "blue": (0.15, 0.3, 0.85, 1)}
CUBE_HALF = 0.02
LIFT_SUCCESS = 0.05
GOAL_TOLERANCE = 0.02


@dataclass(frozen=True)
class Task:
    name: str
    command: str
    has_goal: bool


TASKS: dict[str, Task] = {
    **{f"pick_{c}": Task(f"pick_{c}", f"pick up the {c} cube", True) for c in CUBE_COLOURS},
    "reach": Task("reach", "reach the point", True),
    "obstacle": Task("obstacle", "reach the goal around the obstacle", True),
}


def normalise_command(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".!").split())


def task_for_command(text: str) -> Task | None:
    """The task whose command is exactly ``text`` (case and spacing ignored), or None."""
    wanted = normalise_command(text)
    return next((t for t in TASKS.values() if t.command == wanted or t.name == wanted), None)


def get_task(name_or_command: str) -> Task:
    task = TASKS.get(name_or_command) or task_for_command(name_or_command)
    if task is None:
        known = ", ".join(f"{t.name} ({t.command!r})" for t in TASKS.values())
        raise KeyError(f"unknown task {name_or_command!r}; known tasks: {known}")
    return task


@dataclass
class Layout:
    """Randomised initial state of an episode (world frame = arm base frame, m)."""

    cubes: dict[str, np.ndarray]  # colour -> (x, y) on the table
    goal: np.ndarray | None  # (3,)
    obstacle: np.ndarray | None  # (x, y) of the post, or None
    start_offset: np.ndarray  # (7,) joint offsets from home
    side: int  # obstacle task: +1 in front of the post, -1 behind it (chosen for the expert)


def sample_layout(task: Task, seed: int) -> Layout:
    rng = np.random.default_rng(seed)
    cubes: dict[str, np.ndarray] = {}
    while len(cubes) < len(CUBE_COLOURS):
        p = np.array([rng.uniform(0.32, 0.5), rng.uniform(-0.18, 0.18)])
        if all(np.linalg.norm(p - q) > 0.09 for q in cubes.values()):
            cubes[list(CUBE_COLOURS)[len(cubes)]] = p
    goal = obstacle = None
    if task.name.startswith("pick_"):
        # The target object's position, as a detector or an operator's click in RViz would
        # give it; the images still show the scene, the goal says where to grasp.
        xy = cubes[task.name.removeprefix("pick_")]
        goal = np.array([xy[0], xy[1], CUBE_HALF])
    if task.name == "reach":
        goal = np.array([rng.uniform(0.3, 0.5), rng.uniform(-0.2, 0.2), rng.uniform(0.12, 0.3)])
    if task.name == "obstacle":
        # A low post between a start on the right and a goal on the left; the arm passes it
        # in front (away from the base) or behind, never over it (its top is above the fingers).
        goal = np.array([rng.uniform(0.4, 0.44), rng.uniform(0.16, 0.2), rng.uniform(0.06, 0.08)])
        obstacle = np.array([0.42, rng.uniform(-0.01, 0.01)])
        cubes = {c: np.array([0.25 + 0.06 * i, 0.3]) for i, c in enumerate(CUBE_COLOURS)}  # out of the way
    start = np.zeros(7)
    start[:6] = rng.normal(0, 0.03, 6)
    return Layout(cubes, goal, obstacle, start, side=1 if rng.random() < 0.5 else -1)
