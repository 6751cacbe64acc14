"""Issue 16: tasks are objects (flow_policy_node/tasks.py), and every registered task passes
the same checks here: a layout in the workspace, an unsolved start, an expert that solves
it, and phrasings that resolve to it. A new task gets these by being registered."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from language_model import real_embedder

from flow_policy_node.control.commands import CommandResolver, colours_in, slot_free
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.sim.env import ArmEnv, SimConfig
from flow_policy_node.sim.expert import run_expert_episode
from flow_policy_node.tasks import CUBE_COLOURS, CUBE_HALF, TASKS, WORKSPACE, get_task, task_for_command

NAMES = list(TASKS)


@pytest.fixture(scope="module")
def env():
    e = ArmEnv(SimConfig(render=False))
    yield e
    e.close()


@pytest.fixture(scope="module")
def resolver() -> CommandResolver:
    cfg = PolicyNodeConfig()
    commands = [t.command for t in TASKS.values()]
    return CommandResolver(commands, real_embedder(), cfg.command_threshold, cfg.command_margin)


def test_the_task_strings_that_datasets_and_checkpoints_hold_are_unchanged() -> None:
    assert {name: t.command for name, t in TASKS.items()} == {
        "pick_red": "pick up the red cube",
        "pick_green": "pick up the green cube",
        "pick_blue": "pick up the blue cube",
        "reach": "reach the point",
        "obstacle": "reach the goal around the obstacle",
    }
    assert [name for name, t in TASKS.items() if t.goal_from_image] == ["pick_red", "pick_green", "pick_blue"]


def test_tasks_are_found_by_name_or_command() -> None:
    assert task_for_command("Pick up the RED cube.").name == "pick_red"
    assert get_task("reach") is get_task("reach the point") is TASKS["reach"]
    assert task_for_command("make coffee") is None
    with pytest.raises(KeyError, match="known tasks"):
        get_task("fly")


def inside(point: np.ndarray) -> bool:
    low, high = WORKSPACE
    return bool(np.all(point >= low) and np.all(point <= high))


@pytest.mark.parametrize("name", NAMES)
def test_layouts_lie_in_the_workspace_and_follow_the_seed(name: str) -> None:
    task = TASKS[name]
    for seed in range(20):
        layout = task.sample_layout(seed)
        assert set(layout.cubes) == set(CUBE_COLOURS)
        cubes = list(layout.cubes.values())
        for i, xy in enumerate(cubes):
            assert inside(np.array([*xy, CUBE_HALF])), (seed, xy)
            assert all(np.abs(xy - other).max() > 2 * CUBE_HALF for other in cubes[i + 1 :]), seed  # apart
        assert (layout.goal is not None) == (task.goal is not None), seed
        if layout.goal is not None:
            assert inside(layout.goal), (seed, layout.goal)
        if layout.obstacle is not None:
            assert inside(np.array([*layout.obstacle, 0.0])), (seed, layout.obstacle)
        start = task.start_tcp(layout)
        assert start is None or inside(start), (seed, start)
        assert layout.side in (1, -1)
    a, b = task.sample_layout(3), task.sample_layout(3)
    assert np.array_equal(a.start_offset, b.start_offset) and np.array_equal(a.cubes["red"], b.cubes["red"])
    assert not np.array_equal(a.start_offset, task.sample_layout(4).start_offset)


@pytest.mark.parametrize("name", NAMES)
def test_an_episode_starts_unsolved_and_the_expert_solves_it(env: ArmEnv, name: str) -> None:
    task = TASKS[name]
    solved = 0
    for seed in range(4):
        env.reset(name, seed)
        start = task.start_tcp(env.layout)
        if start is not None:
            assert np.linalg.norm(env.tcp_position() - start) < 0.01, (seed, env.tcp_position(), start)
        assert not task.achieved(env) and not task.spoiled(env), seed
        hold = env.joint_targets()
        for _ in range(10):  # holding still for a second solves nothing
            env.step(hold)
        assert not env.success(), seed
        solved += run_expert_episode(env, name, seed).success
    assert solved >= 3, solved


@pytest.mark.parametrize("name", NAMES)
def test_the_name_the_command_and_every_phrasing_resolve_to_the_task(
    resolver: CommandResolver, name: str
) -> None:
    task = TASKS[name]
    assert resolver.resolve(name).task == task.command
    assert resolver.resolve(task.command.upper() + ".").task == task.command
    colours = colours_in(task.command)  # the colour slot, which phrasings leave out
    assert len(task.phrasings()) >= 3
    for phrasing in task.phrasings():
        assert slot_free(phrasing) == phrasing  # in the words the resolver reduces a request to
        res = resolver.resolve(" ".join([phrasing, *colours]))
        assert res.task == task.command, res.message


def test_the_expert_cli_lists_every_task_with_its_goal() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flow_policy_node.cli", "expert", "--list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(TASKS)
    for line, task in zip(lines, TASKS.values(), strict=True):
        assert line.startswith(task.name) and repr(task.command) in line and str(task.goal) in line
        assert ("in the image" in line) == task.goal_from_image


def test_the_runtime_reads_tasks_without_the_simulator() -> None:
    """control/ (the policy node's ROS-free runtime) imports neither mujoco nor sim/."""
    code = (
        "import sys, importlib, pkgutil, flow_policy_node.control as m, flow_policy_node.control.runtime\n"
        "for info in pkgutil.walk_packages(m.__path__, m.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "assert 'flow_policy_node.tasks' in sys.modules\n"
        "sim = ('mujoco', 'flow_policy_node.sim')\n"
        "bad = sorted(k for k in sys.modules if k in sim or k.startswith(tuple(f'{s}.' for s in sim)))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
