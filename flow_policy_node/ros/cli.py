"""`flow-policy sim | record | run | demo`: the ROS graph without `ros2 launch`.

Each starts our nodes as separate processes with the same YAML parameter files the
launch files use (config/), loopback-only DDS, and stops them on Ctrl-C. Every command
has a run directory (``--out``); each node logs to ``<out>/logs/<node>.log``, and a node
that dies ends the command with its exit code and the last error lines of its log. `run`
and `sim --checkpoint` wait for the policy node to become active: one whose checkpoint
does not fit the robot ends the command with the node's own reason.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from flow_policy_node import names
from flow_policy_node.cli_common import check_writable
from flow_policy_node.names import absolute

if TYPE_CHECKING:
    from flow_policy_node.ros.graph import Graph


def register(subparsers: argparse._SubParsersAction) -> None:
    # Options without a default leave the node's parameter to its config/*.yaml.
    s = subparsers.add_parser("sim", help="start the MuJoCo sim node (and a policy node with --checkpoint)")
    s.add_argument("--task", help="task to start with (default: sim_node.yaml's)")
    s.add_argument("--checkpoint", type=Path, help="also run policy_node with this checkpoint")
    s.add_argument("--real-time-factor", type=float, help="default: sim_node.yaml's")
    s.add_argument("--out", type=Path, default=Path("runs/sim"), help="run directory: node logs in OUT/logs")
    s.set_defaults(func=run_sim)

    r = subparsers.add_parser("record", help="record teleop demos: sim + scripted teleop + recorder")
    r.add_argument("--tasks", nargs="+", help="default: teleop_node.yaml's")
    r.add_argument("--episodes", type=int, default=10)
    r.add_argument(
        "--out", type=Path, default=Path("runs/bags"), help="episodes (bags); node logs in OUT/logs"
    )
    r.add_argument("--storage", choices=("mcap", "sqlite3"), help="default: recorder_node.yaml's")
    r.add_argument("--real-time-factor", type=float, default=3.0, help="recording runs faster than real time")
    r.set_defaults(func=run_record)

    p = subparsers.add_parser("run", help="run policy_node on a robot's topics (real arm or any sim)")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--params", default="policy_node.real.yaml", help="parameter file in config/")
    p.add_argument(
        "--out", type=Path, default=Path("runs/policy"), help="run directory: node logs in OUT/logs"
    )
    p.set_defaults(func=run_policy)

    d = subparsers.add_parser("demo", help="collect demos in sim via ROS, convert, train, evaluate, report")
    d.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        help="run directory (emptied first); node logs in OUT/logs",
    )
    d.add_argument("--quick", action="store_true", help="small run (about 3 minutes on 2 cores)")
    d.add_argument("--tasks", nargs="+")
    d.add_argument("--demos", type=int, help="demonstrations per task")
    d.add_argument("--steps", type=int, help="training steps")
    d.add_argument("--eval-episodes", type=int)
    d.add_argument(
        "--cameras",
        nargs="*",
        help="cameras the policy sees (default: front; none listed: state + goal + task)",
    )
    d.set_defaults(func=run_demo)


def _graph(out: Path, what: str = "node logs") -> Graph:
    """The command's graph, its nodes logging to ``out/logs``, after checking ``out`` is writable."""
    from flow_policy_node.ros.graph import Graph

    check_writable(out, what)
    graph = Graph(log_dir=out / "logs")
    print(f"node logs: {graph.log_dir}/<node>.log")
    return graph


@contextlib.contextmanager
def _serving(out: Path) -> Iterator[Graph]:
    """A graph that runs until Ctrl-C, which ends the command normally (exit 0) whenever it
    comes, also while the nodes start; a node that dies still ends it with NodeFailed."""
    with _graph(out) as graph, contextlib.suppress(KeyboardInterrupt):
        yield graph


def _given(**params) -> dict:
    """The parameters the user gave (the others stay the YAML's)."""
    return {k: v for k, v in params.items() if v is not None}


def _wait_for_policy(graph: Graph, name: str) -> None:
    """Return once the policy node is active; a checkpoint that does not fit ends the command."""
    from flow_policy_node.ros.graph_client import GraphClient, wait_until_active

    print("waiting for the policy node to load its checkpoint")
    with GraphClient("flow_policy_cli", graph.domain_id) as client:
        wait_until_active(client, graph, name)
    print("policy node active")


def _check_tasks(tasks: list[str]) -> None:
    """An unknown task is refused here, naming the known ones, rather than by a node."""
    from flow_policy_node.tasks import get_task

    for task in tasks:
        get_task(task)


def _check_checkpoint(checkpoint: Path) -> None:
    """A missing or incomplete checkpoint is refused here, not by a node that would wait."""
    from flow_policy_node.train.checkpoint import read_metadata

    read_metadata(checkpoint)


def run_sim(args: argparse.Namespace) -> int:
    from flow_policy_node.ros.graph import ros_args

    if args.task:
        _check_tasks([args.task])
    if args.checkpoint:
        _check_checkpoint(args.checkpoint)
    with _serving(args.out) as graph:
        params = _given(task=args.task, real_time_factor=args.real_time_factor)
        graph.start("sim", "sim_node", ros_args("sim_node.yaml", **params))
        if args.checkpoint:
            graph.start(
                "policy", "policy_node", ros_args("policy_node.sim.yaml", checkpoint=str(args.checkpoint))
            )
            _wait_for_policy(graph, "policy")
        topic = absolute(names.COMMAND)
        print(f"running; Ctrl-C stops (try: ros2 topic pub --once {topic} std_msgs/String ...)")
        graph.wait()
    return 0


def run_record(args: argparse.Namespace) -> int:
    from flow_policy_node.ros.graph import ros_args

    if args.tasks:
        _check_tasks(args.tasks)
    with _graph(args.out, "episodes") as graph:
        graph.start("sim", "sim_node", ros_args("sim_node.yaml", real_time_factor=args.real_time_factor))
        recorder = _given(storage=args.storage)
        graph.start(
            "recorder",
            "recorder_node",
            ros_args("recorder_node.yaml", use_sim_time=True, output_dir=str(args.out), **recorder),
        )
        teleop = _given(tasks=args.tasks)
        graph.start(
            "teleop",
            "teleop_node",
            ros_args("teleop_node.yaml", use_sim_time=True, episodes=args.episodes, record=True, **teleop),
        )
        graph.wait(until="teleop")
        graph.stop("recorder", check=True)  # it closes the last episode on the way out
    print(f"episodes in {args.out}; convert with: flow-policy convert {args.out} <dataset>")
    return 0


def run_policy(args: argparse.Namespace) -> int:
    from flow_policy_node.ros.graph import ros_args

    _check_checkpoint(args.checkpoint)
    with _serving(args.out) as graph:
        graph.start("policy", "policy_node", ros_args(args.params, checkpoint=str(args.checkpoint)))
        _wait_for_policy(graph, "policy")
        graph.wait()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from flow_policy_node.ros.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick(args.out) if args.quick else DemoConfig(out=args.out)
    if args.tasks:
        cfg.tasks = tuple(args.tasks)
    if args.demos:
        cfg.demos_per_task = args.demos
    if args.steps:
        cfg.train_steps = args.steps
    if args.eval_episodes:
        cfg.eval_episodes = args.eval_episodes
    if args.cameras is not None:
        cfg.cameras = tuple(args.cameras)
        cfg.record_cameras = tuple(dict.fromkeys((*cfg.record_cameras, *cfg.cameras)))
    _check_tasks(list(cfg.tasks))
    check_writable(args.out, "the demo's results")
    summary = run_demo(cfg)
    for task, rate in summary["success_rate"].items():
        print(f"{task:10s} closed-loop success through ROS: {rate:.0%}")
    return 0
