"""Issue 12: no node outlives the `flow-policy` process that started it.

SIGINT and SIGTERM stop the graph cleanly (also when started as a background job, which
inherits SIGINT ignored); SIGKILL of the parent (a test timeout, the OOM killer) ends the
children through the parent-death signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rosutil import FLOW_POLICY, alive, children, cmdline, wait_for


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_nodes_end_with_their_parent(ros_domain, how, tmp_path: Path) -> None:
    # SIGINT ignored, as a shell starts a background job: the CLI must still stop on it.
    parent = subprocess.Popen(
        [FLOW_POLICY, "sim", "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    nodes: list[int] = []
    try:
        assert wait_for(lambda: any("sim_node" in cmdline(c) for c in children(parent.pid)), 60)
        nodes = [c for c in children(parent.pid) if "sim_node" in cmdline(c)]
        parent.send_signal(getattr(signal, how))
        assert wait_for(lambda: not any(alive(n) for n in nodes), 30), f"{how}: nodes outlived the parent"
        assert parent.wait(timeout=30) in (0, 130, -signal.SIGKILL)
    finally:
        for pid in [*nodes, parent.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=10)


SIGNAL_IN_CALLBACK = """
import os, signal, sys, time
import rclpy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String
from flow_policy_node.ros.env import spin

rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
node = rclpy.create_node("signal_in_callback")
done = []

def callback(msg):
    os.kill(os.getpid(), signal.SIG{how})  # arrives while this callback runs
    time.sleep(0.05)  # Python code after the signal: an exception raised here would end it
    done.append("callback")

node.create_subscription(String, "chatter", callback, 10)
pub = node.create_publisher(String, "chatter", 10)
node.create_timer(0.05, lambda: pub.publish(String(data="x")))
spin(node, cleanup=lambda: done.append("cleanup"))
print(",".join(done), flush=True)
"""


@pytest.mark.parametrize("how", ["INT", "TERM"])
def test_a_signal_inside_a_callback_lets_it_finish(ros_domain, how) -> None:
    # A signal raised as KeyboardInterrupt inside a callback can land in rclpy's C++ message
    # conversion and kill the node with a RuntimeError instead of a clean stop.
    result = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_CALLBACK.replace("{how}", how)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "callback,cleanup", result.stdout + result.stderr
