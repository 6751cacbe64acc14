"""Start our nodes as separate processes with the project's YAML configs (the venv's
stand-in for `ros2 launch`). Every process gets loopback-only discovery, the project's DDS
profile and the graph's ROS_DOMAIN_ID (the caller's, unless one is given).

Children never outlive the graph: ``stop`` sends SIGINT then SIGKILL by PID (as `ros2
launch` does), and each child asks the kernel for SIGTERM when its parent dies
(PR_SET_PDEATHSIG), which covers a parent killed with SIGKILL, e.g. by a test timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from flow_policy_node.robot import description_dir


def config_dir() -> Path:
    return description_dir().parent / "config"


def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_dir() / "fastdds_localhost.xml"))
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    if not env.get("AMENT_PREFIX_PATH") and (Path(sys.prefix) / "share" / "ament_index").is_dir():
        env["AMENT_PREFIX_PATH"] = sys.prefix
    env.setdefault("MUJOCO_GL", "egl")
    return env


def ros_args(params_file: str | None = None, **params) -> list[str]:
    args = ["--ros-args"]
    if params_file:
        args += ["--params-file", str(config_dir() / params_file)]
    for key, value in params.items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | tuple):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        args += ["-p", f"{key}:={value}"]
    return args


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent exits, however it exits (Linux)."""
    # Not glibc/Linux: stop() still ends children on a normal exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def stop_on_signals() -> None:
    """Turn SIGINT/SIGTERM into KeyboardInterrupt, so ``with Graph()`` stops its children.

    Both explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps
    an inherited SIG_IGN, so `flow-policy sim &` then `kill -INT` would do nothing.
    """

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


@dataclass
class Graph:
    """Processes of one ROS graph; stopped (SIGINT, then SIGKILL) on exit, by PID."""

    domain_id: int | None = None
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return ros_environment(self.domain_id)

    def start(self, name: str, executable: str, args: list[str]) -> subprocess.Popen:
        exe = Path(sys.executable).parent / executable
        cmd = [str(exe) if exe.exists() else executable, *args]
        out = open(self.log_dir / f"{name}.log", "w") if self.log_dir else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True, preexec_fn=_die_with_parent
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 10.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
