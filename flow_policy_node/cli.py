"""`flow-policy`: the command line of the suite.

Each subpackage contributes its subcommands through a ``register(subparsers)`` function
in its ``cli`` module; handlers import heavy libraries (torch, mujoco, rclpy) lazily so
that ``flow-policy --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "flow_policy_node.data.cli",  # convert
    "flow_policy_node.train.cli",  # train
    "flow_policy_node.sim.cli",  # eval, collect-sim
    "flow_policy_node.ros.cli",  # sim, record, run, demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flow-policy", description="Flow-matching robot policies for ROS 2."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flow_policy_node.ros.graph import stop_on_signals

    stop_on_signals()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
