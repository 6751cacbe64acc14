"""Start our nodes as separate processes with the project's YAML configs (the venv's
stand-in for `ros2 launch`, which is not on PyPI). Every process gets loopback-only
discovery, the project's DDS profile and the graph's own ROS_DOMAIN_ID.
"""

from __future__ import annotations

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
        proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)
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
