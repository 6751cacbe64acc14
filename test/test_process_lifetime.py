"""Issue 12: no node outlives the `flow-policy` process that started it.

SIGINT and SIGTERM stop the graph cleanly (also when started as a background job, which
inherits SIGINT ignored); SIGKILL of the parent (a test timeout, the OOM killer) ends the
children through the parent-death signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
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
