"""`flow-policy`: the command line of the suite.

Each subpackage contributes its subcommands through a ``register(subparsers)`` function
in its ``cli`` module; handlers import heavy libraries (torch, mujoco, rclpy) lazily so
that ``flow-policy --help`` stays fast.

A command that fails exits non-zero and prints one cause on stderr, ``error: ...``: the
exception's message (its traceback only with ``--verbose``), or for a node that died, the
node, its exit code, its log file and the log's last error lines (ros/graph.py NodeFailed).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from flow_policy_node.cli_common import CommandError

COMMAND_MODULES = (
    "flow_policy_node.data.cli",  # convert
    "flow_policy_node.train.cli",  # train
    "flow_policy_node.sim.cli",  # eval, expert
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
    for command in subparsers.choices.values():
        command.add_argument("--verbose", action="store_true", help="on failure, print the traceback too")
    return parser


def describe(exc: BaseException) -> str:
    """An exception as one cause: its message, or its type where it has none."""
    # KeyError's str() is the repr of its argument (quoted); its argument is the message.
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return message or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flow_policy_node.ros.graph import stop_on_signals

    stop_on_signals()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {describe(exc)}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CommandError) else 1


if __name__ == "__main__":
    sys.exit(main())
