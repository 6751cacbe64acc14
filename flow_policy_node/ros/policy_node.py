"""policy_node: runs a FlowPolicy on live topics and publishes JointTrajectory chunks.

The node is :class:`flow_policy_node.ros.policy_lifecycle.PolicyNode`; this entry point
checks the ROS environment first (a clear message instead of an import traceback), then
spins it on a SingleThreadedExecutor (see that module for why not a multi-threaded one).
"""

from __future__ import annotations

import os
import sys

from flow_policy_node.ros.env import run_node_main, spin


def _main(argv: list[str]) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from flow_policy_node.control.commands import LOADING
    from flow_policy_node.ros.policy_lifecycle import PolicyNode

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = PolicyNode()
    spin(node, SingleThreadedExecutor(), node.close, idle=node.idle)
    runtime = node.runtime
    if runtime is not None and runtime.resolver.free_text == LOADING:
        # Stopped while the language model still loads on its thread: interpreter exit would
        # destroy the loader's native threads mid-run (std::terminate, exit code -6, seen
        # under `ros2 launch` on a busy machine). Everything of ours is shut down by now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def main() -> int:
    return run_node_main(_main)


if __name__ == "__main__":
    sys.exit(main())
