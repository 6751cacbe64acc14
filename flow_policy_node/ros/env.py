"""Start-up checks for ROS entry points: clear messages instead of import tracebacks."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

SETUP_HINT = (
    "In this repository's venv run `make setup` (or scripts/setup.sh); in a ROS 2 workspace run "
    "`colcon build --base-paths src src/flow_policy/flow_policy_msgs` and `source install/setup.bash`."
)

# How long an idle node lets its messages gather: the latency an idle node adds to a
# command or a service call, and 20 wake-ups a second instead of one per message.
IDLE_PERIOD_S = 0.05


class EnvironmentProblem(RuntimeError):
    """The ROS environment cannot run our nodes; the message says how to fix it."""


def check_ros_environment() -> None:
    """Raise :class:`EnvironmentProblem` naming what is missing and the command that provides it."""
    try:
        importlib.import_module("rclpy")
    except ImportError as exc:
        raise EnvironmentProblem(
            f"ROS 2 Python client library `rclpy` is not importable ({exc}). "
            "Source your ROS 2 installation (e.g. `source /opt/ros/jazzy/setup.bash`) or use this "
            f"repository's venv. {SETUP_HINT}"
        ) from exc
    try:
        importlib.import_module("flow_policy_msgs.msg")
        importlib.import_module("flow_policy_msgs.srv")
        importlib.import_module("flow_policy_msgs.action")
    except ImportError as exc:
        raise EnvironmentProblem(
            f"The interface package `flow_policy_msgs` is not built or not on the path ({exc}). {SETUP_HINT}"
        ) from exc
    # A venv install puts the ament index under sys.prefix; point at it rather than fail.
    if not os.environ.get("AMENT_PREFIX_PATH") and (Path(sys.prefix) / "share" / "ament_index").is_dir():
        os.environ["AMENT_PREFIX_PATH"] = sys.prefix


def run_node_main(main, argv: list[str] | None = None) -> int:
    """Run a node ``main(argv)`` after the environment checks; print problems, no traceback."""
    try:
        check_ros_environment()
    except EnvironmentProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return main(sys.argv if argv is None else argv) or 0
    except KeyboardInterrupt:  # Ctrl-C / SIGINT before spinning began (importing torch takes seconds)
        return 0


def _run_ready(executor) -> None:
    """Run every callback that is ready now, without waiting for more."""
    from rclpy.executors import ShutdownException, TimeoutException

    while True:
        try:
            handler, _, _ = executor.wait_for_ready_callbacks(timeout_sec=0)
        except (TimeoutException, ShutdownException):
            return
        handler()
        if handler.exception() is not None:
            raise handler.exception()


def spin(
    node,
    executor=None,
    cleanup=None,
    idle: Callable[[], bool] | None = None,
    until: Callable[[], bool] | None = None,
) -> None:
    """Spin ``node`` until SIGINT/SIGTERM (or ``until()``), then run ``cleanup`` and shut rclpy down.

    While ``idle()`` is true the node takes its messages in batches, every ``IDLE_PERIOD_S``:
    rclpy's executor costs ~0.4-0.7 ms of Python per wake-up (it rebuilds its wait set from
    every entity of the node), so a node woken by each of ~230 sensor and /clock messages a
    second used 10-16% of a core doing nothing. A batch shares one wake-up among the topics
    with something new; with depth-1 subscriptions that is one message per topic.

    Call after ``rclpy.init(args=..., signal_handler_options=SignalHandlerOptions.NO)``:
    with rclpy's own handler the context dies inside the signal, before a node can
    finish its work (a recorder closing its bag); here the signal ends the spin and the
    cleanup runs while the context is still valid.
    """
    import signal

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    stopping = threading.Event()

    # A flag, not KeyboardInterrupt: raised inside a callback, the exception can land in
    # rclpy's C++ message conversion and come out as a RuntimeError that kills the node.
    def stop(signum, frame):
        stopping.set()

    # Both explicitly: a shell starts background jobs with SIGINT ignored, and Python
    # keeps an inherited SIG_IGN, so `node &` then `kill -INT` would otherwise do nothing.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    executor = executor or SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # spin_once with a timeout, not spin(): the wait must return now and then for
        # Python to run the signal handler and the loop to see the flag.
        while not stopping.is_set() and rclpy.ok(context=node.context) and not (until and until()):
            if idle is not None and idle():
                _run_ready(executor)
                time.sleep(IDLE_PERIOD_S)
            else:
                executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        if cleanup is not None:
            cleanup()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
