"""Run the real ROS 2 tools (`ros2 launch`, `ros2 topic pub`, ...) as a user does, from tests.

The upstream `ros2` CLI, launch and launch_ros are not on PyPI: `make setup` installs them
into the venv when ROS2_TOOLS_DIR names a folder that has them (.ci/run names
../shared/ros2-tools). Without them the tests that need them skip, saying so.

Every process starts in a process group of its own and is ended by that group's id
(SIGINT first, as Ctrl-C does, then SIGKILL), so nothing outlives a test, even a failed
one. `ros2` verbs may start a daemon (its own session, one per ROS_DOMAIN_ID): `stop_daemon`
ends it. The environment is the test's: loopback-only discovery, the project's DDS
profile and the test's own ROS_DOMAIN_ID (see conftest.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
ROS2 = BIN / "ros2"
STAND_INS = Path(__file__).resolve().parent / "stand_ins"


def _tools_missing() -> str:
    missing = [
        m for m in ("launch", "launch_ros", "ros2cli", "ros2launch") if importlib.util.find_spec(m) is None
    ]
    if not ROS2.exists():
        missing.append(str(ROS2))
    if not missing:
        return ""
    return (
        f"the upstream ROS 2 tools are not installed ({', '.join(missing)} missing; PyPI lacks them): "
        "run `ROS2_TOOLS_DIR=<folder with wheels/ and src/> make setup` (.ci/run uses ../shared/ros2-tools)"
    )


TOOLS_MISSING = _tools_missing()
needs_ros2_tools = pytest.mark.skipif(bool(TOOLS_MISSING), reason=TOOLS_MISSING)


def ros_env(**extra: str) -> dict[str, str]:
    """The test's environment, with the venv's executables first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def stand_in_prefix(
    tmp: Path, packages: dict[str, list[str]], log: Path, exit_after: dict | None = None
) -> Path:
    """An ament prefix with stand-ins for C++ packages that PyPI lacks (robot_state_publisher,
    rviz2, Gazebo's): each executable logs its arguments and parameter files to ``log`` and
    runs until SIGINT (or exits after ``exit_after[executable]`` seconds, as `create` does).
    Launch files find them exactly as they find the real ones (lib/<package>/<executable>)."""
    prefix = tmp / "stand_ins_prefix"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    (prefix / "bin").mkdir(exist_ok=True)
    for package, executables in packages.items():
        (index / package).touch()
        (prefix / "share" / package).mkdir(parents=True, exist_ok=True)
        lib = prefix / "lib" / package
        lib.mkdir(parents=True, exist_ok=True)
        for exe in executables:
            seconds = (exit_after or {}).get(exe, 0)
            script = lib / exe
            script.write_text(
                f"#!{sys.executable}\n"
                "import sys\n"
                f"sys.path.insert(0, {str(STAND_INS)!r})\n"
                "from stand_in import main\n"
                f"main({package!r}, {exe!r}, {str(log)!r}, {float(seconds)!r})\n"
            )
            script.chmod(0o755)
            if package == "rviz2":  # also a command on PATH, as `rviz2 -d ...` in the README
                (prefix / "bin" / exe).symlink_to(script)
    return prefix


class Process:
    """A command in a process group of its own; output goes to a log file."""

    def __init__(self, cmd: list[str] | str, log: Path, env: dict[str, str], cwd: Path | None = None) -> None:
        self.cmd = cmd
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop())
        shell = isinstance(cmd, str)
        self.popen = subprocess.Popen(
            ["bash", "-c", cmd] if shell else cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: killed as a whole by its id
            text=True,
        )
        self.pgid = self.popen.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """Wait until ``pattern`` (a regex) appears in the output; fail with the output if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.popen.poll() is not None:
                break
            time.sleep(0.2)
        match = re.search(pattern, self.output())
        if match:
            return match
        raise AssertionError(
            f"{pattern!r} not seen within {timeout:.0f} s in {self.cmd}:\n{self.output()[-6000:]}"
        )

    def group_alive(self) -> list[int]:
        return processes_in_group(self.pgid)

    def interrupt(self) -> float:
        """SIGINT to the leader only (the launch process): seconds until the whole group is gone,
        or inf."""
        t0 = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
        deadline = t0 + 15.0
        while time.monotonic() < deadline:
            if self.popen.poll() is not None and not self.group_alive():
                return time.monotonic() - t0
            time.sleep(0.05)
        return float("inf")

    def assert_stops_cleanly(self, within: float = 5.0) -> None:
        """SIGINT to `ros2 launch` (as Ctrl-C): every process it started finishes cleanly and the
        whole process group is gone within ``within`` seconds."""
        took = self.interrupt()
        out = self.output()
        assert took < within, f"processes left {took:.1f} s after SIGINT: {self.group_alive()}\n{out[-3000:]}"
        started = re.findall(r"\[(\S+)\]: process started with pid \[(\d+)\]", out)
        unclean = [name for name, pid in started if f"process has finished cleanly [pid {pid}]" not in out]
        assert started and not unclean, f"not finished cleanly after SIGINT: {unclean}\n{out[-3000:]}"

    def stop(self) -> None:
        """End the whole group: SIGINT, then SIGKILL whatever is left (by process group id)."""
        try:
            if self.popen.poll() is None or self.group_alive():
                _signal_group(self.pgid, signal.SIGINT)
                deadline = time.monotonic() + 10.0
                while time.monotonic() < deadline and (self.popen.poll() is None or self.group_alive()):
                    time.sleep(0.05)
            _signal_group(self.pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        finally:
            self._log.close()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def processes_in_group(pgid: int) -> list[int]:
    """PIDs of live (not zombie) processes whose process group is ``pgid``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


class Session:
    """The processes and `ros2` commands of one test; `close()` ends them all."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.procs: list[Process] = []
        self.count = 0
        self.daemon_group: int | None = None

    def start_daemon(self) -> None:
        """Start this domain's `ros2` daemon up front, in a process group of its own, as it runs
        on a user's machine: the verbs then share one daemon that has been discovering the
        graph all along (one that a verb starts itself dies with that verb's group here)."""
        proc = subprocess.run(
            [str(ROS2), "daemon", "start"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # The daemon is a child of that `ros2 daemon start` and stays in its process group.
        for stat in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                cmdline = stat.read_bytes().split(b"\0")
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            domain = f"ROS_DOMAIN_ID={self.env.get('ROS_DOMAIN_ID', '0')}".encode()
            if any(b"ros2cli.daemon" in c for c in cmdline) and domain in environ:
                self.daemon_group = os.getpgid(int(stat.parent.name))

    def start(
        self, cmd: list[str] | str, name: str, cwd: Path | None = None, env: dict | None = None
    ) -> Process:
        self.count += 1
        proc = Process(cmd, self.tmp / f"{self.count:02d}-{name}.log", {**self.env, **(env or {})}, cwd)
        self.procs.append(proc)
        return proc

    def run(self, cmd: list[str] | str, timeout: float = 60.0, cwd: Path | None = None) -> str:
        """Run a command to completion (in its own process group); its output; fail on rc != 0."""
        proc = self.start(cmd, "cmd", cwd)
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.stop()
            raise AssertionError(
                f"{cmd} did not finish within {timeout:.0f} s:\n{proc.output()[-4000:]}"
            ) from None
        out = proc.output()
        proc.stop()
        assert proc.popen.returncode == 0, f"{cmd} exited with {proc.popen.returncode}:\n{out[-4000:]}"
        return out

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        stop_daemon(self.env)
        if self.daemon_group is not None:
            _signal_group(self.daemon_group, signal.SIGKILL)


def stop_daemon(env: dict[str, str]) -> None:
    """Stop the `ros2` daemon of this domain, if a verb started one (it runs in a session of its own)."""
    if ROS2.exists():
        subprocess.run([str(ROS2), "daemon", "stop"], env=env, capture_output=True, timeout=30)


def launch(session: Session, *args: str, name: str = "launch", cwd: Path | None = None) -> Process:
    return session.start([str(ROS2), "launch", "flow_policy_node", *args], name, cwd)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if not predicate():
        raise AssertionError(f"not within {timeout:.0f} s: {what}")


def lifecycle_state(session: Session, node: str) -> str:
    """`ros2 lifecycle get NODE` as a user types it (it may start the daemon; close() stops it)."""
    proc = session.start([str(ROS2), "lifecycle", "get", node], "lifecycle")
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=30)
    out = proc.output()
    proc.stop()
    return out.strip()


def wait_active(session: Session, node: str, launch_proc: Process, timeout: float = 90.0) -> None:
    """Wait until ``node`` answers `active` to `ros2 lifecycle get` (checkpoint loaded)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        assert launch_proc.popen.poll() is None, f"launch ended:\n{launch_proc.output()[-6000:]}"
        state = lifecycle_state(session, node)
        if state.startswith("active"):
            return
        time.sleep(1.0)
    raise AssertionError(
        f"{node} is {state!r}, not active, after {timeout:.0f} s:\n{launch_proc.output()[-6000:]}"
    )


def split_command(text: str) -> list[str]:
    return shlex.split(text)
