"""The tasks: one class per kind of task, the one place that says everything about it.

A task owns
- its name and command text (the task string a dataset and a checkpoint store);
- how a user may word it: the phrasings and object synonyms that the command resolver
  (control/commands.py) builds its matching from;
- its goal semantics: what the goal point means (``goal``; None: the task takes no goal)
  and whether a camera policy finds it in the image instead of being given it
  (``goal_from_image``);
- its episodes: a random layout from a seed, where the gripper starts, the success test
  and the scripted expert's plan (TCP waypoints).

This module needs numpy only, so that the policy node's runtime (control/) reads names,
commands and phrasings without loading the simulator. A task reads a running episode
through :class:`World` (sim/env.py ``ArmEnv`` is one); putting a layout into the MuJoCo
scene and following a plan (IK, minimum-jerk timing) stay in sim/.

Adding a task: one class here and its instance in :data:`TASKS`; test/test_tasks.py holds
every registered task to the same checks (layout, start, expert, phrasings).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol

import numpy as np

CUBE_COLOURS = {"red": (0.85, 0.15, 0.12, 1), "green": (0.15, 0.7, 0.2, 1), "blue": (0.15, 0.3, 0.85, 1)}
CUBE_HALF = 0.02
# Where cube centres are placed: (x, y) corners, m.
CUBE_AREA = ((0.32, -0.18), (0.5, 0.18))
# Where every layout point lies (x, y, z in the arm base frame, m): on the table, inside what
# the arm reaches with the gripper pointing down.
WORKSPACE = (np.array([0.2, -0.35, 0.0]), np.array([0.6, 0.35, 0.35]))
OPEN, CLOSED = 0.04, 0.0  # finger targets


@dataclass
class Layout:
    """Randomised initial state of an episode (world frame = arm base frame, m)."""

    cubes: dict[str, np.ndarray]  # colour -> (x, y) on the table
    goal: np.ndarray | None = None  # (3,)
    obstacle: np.ndarray | None = None  # (x, y) of the post, or None
    start_offset: np.ndarray = field(default_factory=lambda: np.zeros(7))  # joint offsets from home
    side: int = 1  # a coin the expert flips (obstacle: +1 pass in front of the post, -1 behind it)


@dataclass
class Segment:
    """One leg of an expert plan: the TCP and fingers reach these targets after ``duration``."""

    tcp: np.ndarray  # (3,)
    gripper: float
    duration: float  # s


class World(Protocol):
    """What a task reads from a running episode."""

    @property
    def layout(self) -> Layout: ...

    @property
    def touched_obstacle(self) -> bool: ...

    def tcp_position(self) -> np.ndarray: ...

    def cube_position(self, colour: str) -> np.ndarray: ...

    def cube_lift(self, colour: str) -> float:
        """Height of the cube above where it stood at the episode's start (m)."""
        ...


def _jitter(rng: np.random.Generator, p: np.ndarray, scale: float = 0.004) -> np.ndarray:
    """A waypoint as a human would hit it: a few mm off."""
    return p + rng.normal(0, scale, 3)


def _stretch(rng: np.random.Generator, duration: float) -> float:
    """A leg as a human would time it: +-15%."""
    return duration * rng.uniform(0.85, 1.15)


def _scatter_cubes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The three cubes at random places in front of the arm, at least 9 cm apart."""
    cubes: dict[str, np.ndarray] = {}
    while len(cubes) < len(CUBE_COLOURS):
        p = rng.uniform(*CUBE_AREA)
        if all(np.linalg.norm(p - q) > 0.09 for q in cubes.values()):
            cubes[list(CUBE_COLOURS)[len(cubes)]] = p
    return cubes


class Task(ABC):
    """One kind of task: a subclass sets the name, command and goal semantics below and says
    how episodes go (layout, start, success, expert plan) and how users word it."""

    name: str
    command: str
    goal: str | None = None  # what the goal point is; None: the task has no goal input
    goal_from_image: bool = False  # a camera policy learns the goal from the image (the goal head)
    # Words a user may say for this task's objects -> the word its command and phrasings use.
    object_words: ClassVar[Mapping[str, str]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @abstractmethod
    def phrasings(self) -> tuple[str, ...]:
        """Other ways to say the command, colour-free and with the object words above."""

    def sample_layout(self, seed: int) -> Layout:
        rng = np.random.default_rng(seed)
        # Every task draws the cube scatter first, its own scene next, the start and the coin
        # last: pick tasks share a seed's cubes, and seeds keep the layouts they have had
        # (demos and evaluations are named by seed).
        layout = self._arrange(rng, _scatter_cubes(rng))
        start = np.zeros(7)
        start[:6] = rng.normal(0, 0.03, 6)
        return replace(layout, start_offset=start, side=1 if rng.random() < 0.5 else -1)

    @abstractmethod
    def _arrange(self, rng: np.random.Generator, cubes: dict[str, np.ndarray]) -> Layout:
        """This task's scene, given the scattered cubes."""

    def start_tcp(self, layout: Layout) -> np.ndarray | None:
        """Where the gripper starts (pointing down); None: at home, plus ``layout.start_offset``."""
        return None

    @abstractmethod
    def achieved(self, world: World) -> bool:
        """Whether the task is done in this instant (the simulator latches the first time)."""

    def spoiled(self, world: World) -> bool:
        """A mistake that no later success undoes."""
        return False

    @abstractmethod
    def plan(self, world: World, rng: np.random.Generator) -> list[Segment]:
        """The scripted expert's TCP waypoints from the episode's start; ``rng`` varies them."""


PICK_VERBS = (
    "pick up",
    "lift",
    "lift up",
    "raise",
    "hoist",
    "take",
    "grab",
    "grasp",
    "seize",
    "snatch",
    "get",
    "fetch",
    "collect",
    "retrieve",
)


class PickCube(Task):
    """pick_<colour>: three cubes on the table; success: that cube lifted >= 5 cm, the others
    not (< 2 cm)."""

    goal = "where the cube stands at the start (a detector's or an RViz click's point)"
    goal_from_image = True
    object_words: ClassVar[Mapping[str, str]] = {
        **dict.fromkeys(("block", "box", "brick"), "cube"),
        **dict.fromkeys(("blocks", "boxes", "bricks"), "cubes"),
    }
    LIFT = 0.05  # m the cube must rise
    OTHERS_STILL = 0.02  # m the other cubes may rise (nudged, not carried along)

    def __init__(self, colour: str) -> None:
        self.colour = colour
        self.name, self.command = f"pick_{colour}", f"pick up the {colour} cube"

    def phrasings(self) -> tuple[str, ...]:
        return (
            *(f"{verb} the cube" for verb in PICK_VERBS),
            "pick the cube up",
            "lift the cube up",
            "get me the cube",
            "raise the cube off the table",
        )

    def _arrange(self, rng: np.random.Generator, cubes: dict[str, np.ndarray]) -> Layout:
        xy = cubes[self.colour]
        return Layout(cubes, goal=np.array([xy[0], xy[1], CUBE_HALF]))

    def achieved(self, world: World) -> bool:
        lifts = {c: world.cube_lift(c) for c in CUBE_COLOURS}
        others = (v for c, v in lifts.items() if c != self.colour)
        return bool(lifts[self.colour] >= self.LIFT and all(v < self.OTHERS_STILL for v in others))

    def plan(self, world: World, rng: np.random.Generator) -> list[Segment]:
        cube = world.cube_position(self.colour)
        above = np.array([cube[0], cube[1], 0.13])
        grasp = np.array([cube[0], cube[1], CUBE_HALF + 0.004])
        return [
            Segment(_jitter(rng, above), OPEN, _stretch(rng, 1.6)),
            Segment(grasp + np.array([0, 0, rng.normal(0, 0.002)]), OPEN, _stretch(rng, 1.0)),
            Segment(grasp, CLOSED, 0.6),
            Segment(_jitter(rng, np.array([cube[0], cube[1], 0.2])), CLOSED, _stretch(rng, 1.2)),
            Segment(np.array([cube[0], cube[1], 0.2]), CLOSED, 1.0),
        ]


REACH_VERBS = ("reach", "go to", "move to", "get to", "head to", "touch", "move the gripper to")


class ReachPoint(Task):
    """reach: success: the TCP within 2 cm of a goal point in the air."""

    name, command = "reach", "reach the point"
    goal = "the point to reach (an RViz click on /clicked_point)"
    object_words: ClassVar[Mapping[str, str]] = dict.fromkeys(("target", "goal", "spot", "location"), "point")
    TOLERANCE = 0.02  # m between the TCP and the goal

    def phrasings(self) -> tuple[str, ...]:
        return (
            *(f"{verb} the point" for verb in REACH_VERBS),
            "touch the marked point",
            "move the gripper to the clicked point",
            "put your hand on the point",
        )

    def _arrange(self, rng: np.random.Generator, cubes: dict[str, np.ndarray]) -> Layout:
        goal = np.array([rng.uniform(0.3, 0.5), rng.uniform(-0.2, 0.2), rng.uniform(0.12, 0.3)])
        return Layout(cubes, goal=goal)

    def achieved(self, world: World) -> bool:
        return bool(np.linalg.norm(world.tcp_position() - world.layout.goal) <= self.TOLERANCE)

    def plan(self, world: World, rng: np.random.Generator) -> list[Segment]:
        goal = world.layout.goal
        return [Segment(goal.copy(), OPEN, _stretch(rng, 2.0)), Segment(goal.copy(), OPEN, 1.0)]


AVOID_CLAUSES = (
    "around the obstacle",
    "past the obstacle",
    "avoiding the obstacle",
    "without hitting the obstacle",
    "without touching the obstacle",
)


class ReachAroundObstacle(ReachPoint):
    """obstacle: success: a goal within 2 cm reached without ever touching the post.

    A low post stands between a start on the right and a goal on the left; the arm passes it
    in front (away from the base) or behind, never over it (its top is above the fingers);
    expert demos take either way with equal probability.
    """

    name, command = "obstacle", "reach the goal around the obstacle"
    goal = "the point to reach beyond the post"
    object_words: ClassVar[Mapping[str, str]] = {
        **ReachPoint.object_words,
        **dict.fromkeys(("post", "pole", "pillar", "barrier"), "obstacle"),
    }
    POST_X = 0.42

    def phrasings(self) -> tuple[str, ...]:
        return (
            *(f"{verb} the point {clause}" for verb in REACH_VERBS[:4] for clause in AVOID_CLAUSES),
            "go around the obstacle",
            "go around the obstacle to the point",
            "avoid the obstacle",
            "avoid the obstacle and reach the point",
            "steer clear of the obstacle",
        )

    def _arrange(self, rng: np.random.Generator, cubes: dict[str, np.ndarray]) -> Layout:
        goal = np.array([rng.uniform(0.4, 0.44), rng.uniform(0.16, 0.2), rng.uniform(0.06, 0.08)])
        obstacle = np.array([self.POST_X, rng.uniform(-0.01, 0.01)])
        out_of_the_way = {c: np.array([0.25 + 0.06 * i, 0.3]) for i, c in enumerate(CUBE_COLOURS)}
        return Layout(out_of_the_way, goal=goal, obstacle=obstacle)

    def start_tcp(self, layout: Layout) -> np.ndarray:
        return np.array([self.POST_X, layout.obstacle[1] - 0.18, 0.07]) + layout.start_offset[:3] * 0.3

    def spoiled(self, world: World) -> bool:
        return world.touched_obstacle

    def plan(self, world: World, rng: np.random.Generator) -> list[Segment]:
        goal, post = world.layout.goal, world.layout.obstacle
        height = (world.tcp_position()[2] + goal[2]) / 2
        via = _jitter(rng, np.array([post[0] + world.layout.side * 0.11, post[1], height]), 0.005)
        return [
            Segment(via, OPEN, _stretch(rng, 1.4)),
            Segment(goal.copy(), OPEN, _stretch(rng, 1.4)),
            Segment(goal.copy(), OPEN, 1.0),
        ]


TASKS: dict[str, Task] = {
    t.name: t for t in (*(PickCube(c) for c in CUBE_COLOURS), ReachPoint(), ReachAroundObstacle())
}


def normalise_command(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".!").split())


def task_for_command(text: str) -> Task | None:
    """The task whose command or name is exactly ``text`` (case and spacing ignored), or None."""
    wanted = normalise_command(text)
    return next((t for t in TASKS.values() if t.command == wanted or t.name == wanted), None)


def get_task(name_or_command: str) -> Task:
    task = TASKS.get(name_or_command) or task_for_command(name_or_command)
    if task is None:
        known = ", ".join(f"{t.name} ({t.command!r})" for t in TASKS.values())
        raise KeyError(f"unknown task {name_or_command!r}; known tasks: {known}")
    return task
