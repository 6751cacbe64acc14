"""A stand-in for a C++ ROS 2 executable that PyPI lacks (robot_state_publisher, rviz2,
Gazebo's create/parameter_bridge/spawner): it appends one JSON line to a log, with its
package, executable, arguments, the contents of its --params-file files and the time,
then runs until SIGINT/SIGTERM, or exits after a given number of seconds (as `create`
does once the model is spawned). It proves what a launch file starts and with what,
not what the real program would do with it.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path


def main(package: str, executable: str, log: str, exit_after: float) -> None:
    args = sys.argv[1:]
    params = []
    for i, arg in enumerate(args[:-1]):
        if arg == "--params-file":
            try:
                params.append(Path(args[i + 1]).read_text())
            except OSError as exc:
                params.append(f"unreadable: {exc}")
    record = {
        "package": package,
        "executable": executable,
        "args": args,
        "params": params,
        "time": time.time(),
    }
    with open(log, "a") as f:
        f.write(json.dumps(record) + "\n")
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + exit_after if exit_after > 0 else float("inf")
    while not stop and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(log, "a") as f:
        f.write(json.dumps({"package": package, "executable": executable, "exit": time.time()}) + "\n")
