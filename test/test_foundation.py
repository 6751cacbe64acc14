"""Issue 2: the package runs as ROS 2 nodes, over real rclpy, in separate processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rosutil import Collector, node_process, spin_until


def test_policy_node_process_publishes_status_and_serves_set_enabled(rclpy_context) -> None:
    from rclpy.node import Node

    from flow_policy_msgs.msg import PolicyStatus
    from flow_policy_msgs.srv import SetEnabled

    with node_process("policy_node") as proc:
        node = Node("foundation_probe", context=rclpy_context)
        try:
            statuses = Collector()
            node.create_subscription(PolicyStatus, "/flow_policy/status", statuses, 10)
            assert spin_until(node, lambda: len(statuses) > 0, timeout=20), proc_output(proc)
            assert statuses.messages[0].enabled is True

            client = node.create_client(SetEnabled, "/flow_policy/set_enabled")
            assert client.wait_for_service(timeout_sec=10)
            future = client.call_async(SetEnabled.Request(enabled=False))
            assert spin_until(node, future.done, timeout=10)
            assert future.result().success

            before = len(statuses)
            assert spin_until(
                node, lambda: len(statuses) > before and not statuses.messages[-1].enabled, timeout=10
            )
            assert statuses.messages[-1].state == PolicyStatus.STATE_DISABLED
        finally:
            node.destroy_node()
    assert proc.returncode == 0, proc_output(proc)


def proc_output(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        return "(process still running)"
    return proc.stdout.read() if proc.stdout else ""


def test_missing_interfaces_give_a_clear_message(tmp_path) -> None:
    """A node started where flow_policy_msgs cannot be imported names it and the fix."""
    shadow = tmp_path / "flow_policy_msgs"
    shadow.mkdir()
    # A package that fails to import exactly as an unbuilt interface package would.
    (shadow / "__init__.py").write_text("raise ImportError('No module named flow_policy_msgs.msg')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "flow_policy_node.ros.policy_node"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "flow_policy_msgs" in result.stderr
    assert "make setup" in result.stderr and "colcon build" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("module", ["flow", "models", "data", "train", "sim", "control"])
def test_core_packages_do_not_import_rclpy(module: str) -> None:
    code = (
        f"import sys, importlib, pkgutil, flow_policy_node.{module} as m\n"
        f"for info in pkgutil.walk_packages(m.__path__, m.__name__ + '.'):\n"
        f"    importlib.import_module(info.name)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in ('rclpy', 'flow_policy_msgs'))\n"
        f"assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
