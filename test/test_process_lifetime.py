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
import time
from pathlib import Path

import pytest

FLOW_POLICY = str(Path(sys.executable).parent / "flow-policy")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_nodes_end_with_their_parent(ros_domain, how) -> None:
    # SIGINT ignored, as a shell starts a background job: the CLI must still stop on it.
    parent = subprocess.Popen(
        [FLOW_POLICY, "sim"],
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
