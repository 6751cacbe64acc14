"""The orchestrator's own rclpy node (the CLI's, the demo's), to watch the graph it started.

It lives in an rclpy context of its own, in the graph's domain with the graph's loopback
discovery, and spins on a background thread; callers wait on events (a message, a
service's answer), not on sleeps. :func:`wait_until_active` is how a command learns that
its policy node came up, or why it did not.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from flow_policy_node import names
from flow_policy_node.ros.graph import Graph, ros_environment

# How often a wait checks that the graph's processes still run: a process exit is no event
# rclpy can wait on.
CHECK_PERIOD_S = 1.0


class PolicyNotConfigured(RuntimeError):
    """The policy node is up but could not configure (a checkpoint that does not fit the robot)."""


class GraphClient:
    """An rclpy node named ``name`` in ``domain`` (None: ROS_DOMAIN_ID), spinning on a thread."""

    def __init__(self, name: str, domain: int | None = None) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        os.environ.update(ros_environment())  # the graph's discovery settings, read at init
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait(self, future, timeout: float) -> Any:
        """The future's result (the spinning thread completes it); TimeoutError after ``timeout`` s."""
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.context.try_shutdown()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Latest:
    """A subscription callback keeping the newest message; ``wait`` for the next one."""

    def __init__(self) -> None:
        self.message = None
        self.event = threading.Event()

    def __call__(self, msg) -> None:
        self.message = msg
        self.event.set()

    def wait(self, timeout: float) -> Any:
        """The newest message once one arrives after the last wait, or after ``timeout`` s."""
        self.event.wait(timeout)
        self.event.clear()
        return self.message


def wait_until_active(client: GraphClient, graph: Graph, name: str, timeout: float | None = None) -> None:
    """Return once the policy node the graph started as ``name`` is active.

    Raises :class:`PolicyNotConfigured` with the node's own reason when its configure failed
    (the node stays up, unconfigured, for a lifecycle manager that a command does not have),
    :class:`~flow_policy_node.ros.graph.NodeFailed` when a node of the graph exits, and
    TimeoutError after ``timeout`` s (None: no limit).
    """
    from lifecycle_msgs.srv import GetState

    from flow_policy_msgs.msg import PolicyStatus
    from flow_policy_node.control.runtime import UNCONFIGURED

    status = Latest()
    node = client.node
    sub = node.create_subscription(PolicyStatus, names.POLICY_STATUS, status, 10)
    get_state = node.create_client(GetState, names.POLICY_GET_STATE)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            graph.check()
            msg = status.wait(CHECK_PERIOD_S)
            if msg is not None and msg.state == UNCONFIGURED and msg.last_error:
                raise PolicyNotConfigured(
                    f"node {name} could not configure: {msg.last_error} (its log: {graph.log_path(name)})"
                )
            if (
                msg is not None
                and msg.state != UNCONFIGURED
                and _lifecycle_state(client, get_state) == "active"
            ):
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"node {name} did not become active within {timeout:.0f} s; see {graph.log_path(name)}"
                )
    finally:
        node.destroy_subscription(sub)
        node.destroy_client(get_state)


def _lifecycle_state(client: GraphClient, get_state) -> str:
    from lifecycle_msgs.srv import GetState

    if not get_state.service_is_ready():
        return ""
    return client.wait(get_state.call_async(GetState.Request()), 30).current_state.label
