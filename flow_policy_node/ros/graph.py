"""Start our nodes as separate processes with the project's YAML configs (the venv's
stand-in for `ros2 launch`). Every process gets loopback-only discovery, the project's DDS
profile and the graph's ROS_DOMAIN_ID (the caller's, unless one is given).

Children never outlive the graph: ``stop`` sends SIGINT then SIGKILL by PID (as `ros2
launch` does), and each child asks the kernel for SIGTERM when its parent dies
(PR_SET_PDEATHSIG), which covers a parent killed with SIGKILL, e.g. by a test timeout.

Each node's stdout and stderr, where rclpy's console logging goes, is its log file,
``<log_dir>/<name>.log``; a node that exits when it should not is raised as
:class:`NodeFailed`, whose message ends with the last error lines of that log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
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


# rcutils' "[ERROR] [stamp] [node]: ...", the last line of a Python traceback, and the
# "error: ..." of run_node_main.
_ERROR_LINE = re.compile(r"\[(ERROR|FATAL)\]|^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b|^error:")


def log_tail(log: Path, count: int = 5) -> tuple[list[str], bool]:
    """The last ``count`` error lines of ``log`` (True), or its last lines where it has none."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            lines = [ln.rstrip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    errors = [ln for ln in lines if _ERROR_LINE.search(ln)]
    return (errors[-count:], True) if errors else (lines[-count:], False)


class NodeFailed(RuntimeError):
    """A node of the graph exited when it should not have; the message is the whole report."""

    def __init__(self, name: str, executable: str, returncode: int, log: Path) -> None:
        self.name, self.returncode, self.log = name, returncode, log
        if returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"was killed by signal {-returncode}"
        elif returncode == 0:
            how = "exited early (code 0)"
        else:
            how = f"exited with code {returncode}"
        lines, errors = log_tail(log)
        if errors:
            tail = f"last errors in its log {log}:"
        else:
            tail = f"its log {log} ends:" if lines else f"its log {log} is empty"
        super().__init__(f"node {name} ({executable}) {how}; {tail}" + "".join(f"\n  {ln}" for ln in lines))


@dataclass
class Graph:
    """Processes of one ROS graph; stopped (SIGINT, then SIGKILL) on exit, by PID.

    ``log_dir`` is created if missing; each node started as ``name`` logs to
    ``log_dir/<name>.log``.
    """

    log_dir: Path
    domain_id: int | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_dir = Path(self.log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return ros_environment(self.domain_id)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, executable: str, args: list[str]) -> subprocess.Popen:
        exe = Path(sys.executable).parent / executable
        # rcl would also write the node's log lines to ~/.ros/log/<exe>_<pid>_<time>.log, a
        # second copy, outside the run directory, named by a pid nobody knows.
        cmd = [str(exe) if exe.exists() else executable, *args, "--ros-args", "--disable-external-lib-logs"]
        # Unbuffered: a node that is killed must not take its last lines (the ones a failure
        # report shows) with it.
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path(name), "w") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        self.procs[name] = proc
        return proc

    def _failure(self, name: str, proc: subprocess.Popen) -> NodeFailed:
        return NodeFailed(name, Path(proc.args[0]).name, proc.returncode, self.log_path(name))

    def check(self) -> None:
        """Raise :class:`NodeFailed` for the first node that has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise self._failure(name, proc)

    def wait(self, until: str | None = None, timeout: float | None = None) -> bool:
        """Wait for node ``until`` to exit with code 0 (True), or ``timeout`` s (False).

        Any other exit, of that node or of another one first, raises :class:`NodeFailed`.
        A node that finished leaves the graph. Without ``until``, waits for a failure (or Ctrl-C).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            main = self.procs.get(until) if until else None
            if main is not None and main.poll() == 0:
                del self.procs[until]
                return True
            self.check()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.2)  # Popen offers no wait on "any of these"; 0.2 s goes unnoticed

    def stop(self, name: str, timeout: float = 10.0, check: bool = False) -> int | None:
        """SIGINT, then SIGKILL after ``timeout`` s; ``check``: a non-zero exit raises NodeFailed."""
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
        if check and proc.returncode != 0:
            raise self._failure(name, proc)
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
