"""Issue 15: every `flow-policy` command that fails says why, in one cause.

Nodes log to ``<out>/logs/<node>.log``; a node that dies ends the command with its name,
exit code, log file and the log's last error lines; an in-process error prints its message
without a traceback (``--verbose`` adds it). Real processes and real rclpy throughout. Tests
may run as root, for whom chmod does not stop writes: an unwritable path is one under a
regular file, which fails for everyone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from policy_checkpoints import train_step_checkpoint
from rosutil import FLOW_POLICY, children, cmdline, processes_with_env, wait_for

# Children inherit the environment: marked with this, every process a command started is
# found again, reparented or not.
MARK = "FLOW_POLICY_TEST_RUN"


def marked_env(**extra: str) -> tuple[dict[str, str], str]:
    """The environment for a command and the entry that marks its processes."""
    value = uuid.uuid4().hex
    return {**os.environ, MARK: value, **extra}, f"{MARK}={value}"


def flow_policy(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FLOW_POLICY, *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


def test_record_into_an_unwritable_directory_says_why(tmp_path: Path, ros_domain: int) -> None:
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "sub"
    env, entry = marked_env()
    result = flow_policy("record", "--episodes", "1", "--out", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert error_lines(result) == [
        f"error: cannot write episodes to {out}: {tmp_path / 'file'} is not a directory"
    ]
    # Refused before the graph started: no node logs, no success message.
    assert "node logs" not in result.stdout and "episodes in" not in result.stdout
    assert processes_with_env(entry) == []


def test_record_logs_each_node_under_the_run_directory(tmp_path: Path, ros_domain: int) -> None:
    out = tmp_path / "bags"
    env, entry = marked_env(ROS_LOG_DIR=str(tmp_path / "ros_log"))
    result = flow_policy("record", "--episodes", "1", "--out", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"node logs: {out / 'logs'}/<node>.log" in result.stdout
    logs = out / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["recorder.log", "sim.log", "teleop.log"]
    assert "episode 1/1 pick_red seed 0" in (logs / "teleop.log").read_text()
    assert "episode 0 saved" in (logs / "recorder.log").read_text()
    assert "sim ready" in (logs / "sim.log").read_text()
    # rcl's own log file would repeat those lines elsewhere; the run directory holds them all.
    assert not (tmp_path / "ros_log").exists()
    assert sorted(p.name for p in out.glob("episode_*")) == ["episode_0000"]
    assert processes_with_env(entry) == []


def test_a_node_that_fails_at_start_is_named_with_its_error(tmp_path: Path, ros_domain: int) -> None:
    # A machine without the OpenGL backend asked for: the sim node cannot render and exits.
    env, entry = marked_env(MUJOCO_GL="no-such-backend")
    result = flow_policy("sim", "--out", str(tmp_path / "run"), cwd=tmp_path, env=env)
    log = tmp_path / "run" / "logs" / "sim.log"
    assert result.returncode == 1, result.stdout + result.stderr
    lines = error_lines(result)
    assert lines[0] == f"error: node sim (sim_node) exited with code 1; last errors in its log {log}:"
    assert lines[1:] == ["  RuntimeError: invalid value for environment variable MUJOCO_GL: no-such-backend"]
    assert "Traceback (most recent call last)" in log.read_text()  # the whole story stays in the log
    assert processes_with_env(entry) == []


def test_a_node_killed_during_a_run_has_its_last_lines_printed(tmp_path: Path, ros_domain: int) -> None:
    log = tmp_path / "logs" / "sim.log"
    env, entry = marked_env()
    parent = subprocess.Popen(
        [FLOW_POLICY, "sim", "--out", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: log.exists() and "sim ready" in log.read_text(), 120), "sim never came up"
        (sim,) = [c for c in children(parent.pid) if "sim_node" in cmdline(c)]
        os.kill(sim, signal.SIGKILL)  # as the OOM killer would
        stdout, stderr = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.communicate()
    assert parent.returncode == 1, stdout + stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines[0] == f"error: node sim (sim_node) was killed by SIGKILL; its log {log} ends:"
    assert "sim ready" in lines[-1]
    assert processes_with_env(entry) == []


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (("convert", "{tmp}/no_bags", "{tmp}/dataset"), "{tmp}/no_bags is neither a rosbag2 directory"),
        (
            ("convert", "{tmp}/no_bags", "{tmp}/file/dataset"),
            "cannot write the dataset to {tmp}/file/dataset",
        ),
        (("train", "{tmp}/no_data", "--out", "{tmp}/ckpt"), "{tmp}/no_data is not a dataset"),
        (("train", "{tmp}/no_data", "--out", "{tmp}/file/ckpt"), "cannot write the checkpoint to {tmp}/file"),
        (("eval", "{tmp}/no_ckpt"), "checkpoint directory {tmp}/no_ckpt does not exist"),
        (("eval", "{tmp}/no_ckpt", "--out", "{tmp}/file/eval"), "cannot write the report to {tmp}/file/eval"),
        # The policy node would have waited, unconfigured, for ever.
        (("run", "{tmp}/no_ckpt", "--out", "{tmp}/run"), "checkpoint directory {tmp}/no_ckpt does not exist"),
    ],
)
def test_a_bad_path_is_one_line_naming_it(tmp_path: Path, args: tuple[str, ...], cause: str) -> None:
    (tmp_path / "file").write_text("a regular file")
    result = flow_policy(*(a.format(tmp=tmp_path) for a in args), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = error_lines(result)
    assert line.startswith("error: " + cause.format(tmp=tmp_path)), line


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    result = flow_policy("eval", str(tmp_path / "no_ckpt"), "--verbose", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last)")
    assert error_lines(result)[-1] == f"error: checkpoint directory {tmp_path / 'no_ckpt'} does not exist"


SLEEP = ["-c", "import time; time.sleep(120)"]  # Graph.start appends ROS arguments: sys.argv takes them
FAIL = [
    "-c",
    "import sys; print('[INFO] up')\n"
    "print('[ERROR] [1.0] [helper]: disk full', file=sys.stderr)\n"
    "sys.exit(3)",
]


def test_the_graph_reports_the_node_that_died_first(tmp_path: Path) -> None:
    """record and demo wait for one node (teleop) while the others must stay up."""
    from flow_policy_node.ros.graph import Graph, NodeFailed

    log = tmp_path / "logs" / "helper.log"
    with Graph(log_dir=tmp_path / "logs") as graph:
        graph.start("main", "python", SLEEP)
        graph.start("helper", "python", FAIL)
        with pytest.raises(NodeFailed) as failed:
            graph.wait(until="main", timeout=60)
        assert str(failed.value) == (
            f"node helper (python) exited with code 3; last errors in its log {log}:"
            "\n  [ERROR] [1.0] [helper]: disk full"
        )
        assert graph.procs["main"].poll() is None
    with Graph(log_dir=tmp_path / "logs") as graph:
        graph.start("main", "python", ["-c", "pass"])
        graph.start("helper", "python", SLEEP)
        assert graph.wait(until="main", timeout=60)
        assert "main" not in graph.procs  # it finished its job; later checks do not report it
        assert not graph.wait(until="helper", timeout=0.5)  # still up: a timeout, no failure
        with pytest.raises(NodeFailed, match=r"node helper \(python\) was killed by SIGINT;"):
            graph.stop("helper", check=True)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return train_step_checkpoint(tmp_path_factory.mktemp("ckpt") / "step")


@pytest.mark.parametrize("command", ["run", "sim"])
def test_a_checkpoint_that_does_not_fit_the_robot_ends_the_command_with_the_reason(
    tmp_path: Path, ros_domain: int, checkpoint: Path, command: str
) -> None:
    # A complete checkpoint (the command's own check passes), but for a robot whose third
    # joint is called "elbow": the policy node fails to configure and would stay up, unconfigured.
    renamed = tmp_path / "renamed"
    shutil.copytree(checkpoint, renamed)
    meta = json.loads((renamed / "metadata.json").read_text())
    meta["joint_names"][2] = "elbow"
    (renamed / "metadata.json").write_text(json.dumps(meta))
    args = ("run", str(renamed)) if command == "run" else ("sim", "--checkpoint", str(renamed))
    env, entry = marked_env()
    result = flow_policy(*args, "--out", str(tmp_path / "out"), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = error_lines(result)
    log = tmp_path / "out" / "logs" / "policy.log"
    assert line.startswith("error: node policy could not configure: "), line
    assert "robot lacks ['elbow']" in line and "checkpoint lacks ['joint_3']" in line, line
    assert line.endswith(f"(its log: {log})"), line
    assert "cannot configure" in log.read_text()
    assert "running; Ctrl-C stops" not in result.stdout
    assert processes_with_env(entry) == []


@pytest.mark.parametrize("interrupt", ["loading", "active"])
def test_run_waits_for_the_policy_node_and_ctrl_c_ends_it_normally(
    tmp_path: Path, ros_domain: int, checkpoint: Path, interrupt: str
) -> None:
    """`flow-policy run` says when the node is active; Ctrl-C is a stop, not a failure, also
    while the node still loads (the user changes their mind)."""
    env, entry = marked_env(PYTHONUNBUFFERED="1")  # its lines as they are printed
    proc = subprocess.Popen(
        [FLOW_POLICY, "run", str(checkpoint), "--out", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("node logs:")
        assert proc.stdout.readline().strip() == "waiting for the policy node to load its checkpoint"
        if interrupt == "active":
            assert proc.stdout.readline().strip() == "policy node active"  # blocks until it is
            assert "active: waiting for a command" in (tmp_path / "logs" / "policy.log").read_text()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stdout + stderr
    assert "interrupted" not in stderr
    assert processes_with_env(entry) == []
