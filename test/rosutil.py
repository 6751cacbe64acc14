"""Helpers for tests over real rclpy: start node processes, wait for messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


@contextmanager
def node_process(
    executable: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Start one of our console scripts as its own OS process; stop it (by PID) afterwards."""
    proc = subprocess.Popen(
        [str(BIN / executable), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def spin_until(node, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Spin ``node`` until ``predicate()`` holds or ``timeout`` seconds pass."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if predicate():
                return True
            executor.spin_once(timeout_sec=0.05)
        return predicate()
    finally:
        executor.remove_node(node)


class Collector:
    """Subscription callback that keeps every message (thread-safe)."""

    def __init__(self) -> None:
        self.messages: list = []
        self._lock = threading.Lock()

    def __call__(self, msg) -> None:
        with self._lock:
            self.messages.append(msg)

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)
