"""policy_node: runs a FlowPolicy on live topics and publishes JointTrajectory chunks.

The node itself is :class:`flow_policy_node.ros.policy_lifecycle.PolicyNode`; this entry
point checks the ROS environment first (clear message instead of an import traceback),
then spins it on a MultiThreadedExecutor: an ExecuteCommand goal holds its callback for
a whole episode, and services must answer meanwhile. (The other nodes spin single-threaded:
rclpy's MultiThreadedExecutor, and a coroutine awaiting a future, busy-loop in rclpy 9, at a
cost of up to a core; see benchmarks/recorder.py.)
"""

from __future__ import annotations

import sys

from flow_policy_node.ros.env import run_node_main, spin


def _main(argv: list[str]) -> int:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from flow_policy_node.ros.policy_lifecycle import PolicyNode

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = PolicyNode()
    spin(node, MultiThreadedExecutor(num_threads=4), node.close)
    return 0


def main() -> int:
    return run_node_main(_main)


if __name__ == "__main__":
    sys.exit(main())
