"""Test harness: every test keeps ROS traffic on loopback in a DDS domain of its own.

Set before anything imports rclpy: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, the
project's DDS profile, the venv's ament prefix, and offscreen MuJoCo rendering. Each test
that uses ``ros_domain`` gets a fresh ``ROS_DOMAIN_ID`` (also exported to the processes it
starts), so tests and parallel runs never see each other's nodes.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, and every child
# inherits an ignored signal across exec: `ros2 launch` started by a test then ignores the
# Ctrl-C the test sends it. A handled SIGINT here is reset to the default in children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_localhost.xml")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if (Path(sys.prefix) / "share" / "ament_index").is_dir():
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if sys.prefix not in prefixes:
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join([sys.prefix, *prefixes])

# Domain ids 1..200, spread by pid so that concurrent pytest runs start far apart
# (FLOW_POLICY_DOMAIN_BASE pins the start, for runs that must not overlap).
_domains = itertools.count()
_base = int(os.environ.get("FLOW_POLICY_DOMAIN_BASE", os.getpid() % 100))


def next_domain_id() -> int:
    return 1 + (_base + 2 * next(_domains)) % 200


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """A fresh ROS_DOMAIN_ID for this test, exported to the processes it starts."""
    domain = next_domain_id()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    return domain


@pytest.fixture
def rclpy_context(ros_domain: int) -> Iterator[object]:
    """An initialised rclpy context in this test's domain, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        yield context
    finally:
        context.try_shutdown()
