"""Issue 14: the launch files and the README's terminal commands, run with the real ROS 2 tools.

`ros2 launch`, `ros2 topic pub`, `ros2 action send_goal`, `ros2 service call` and
`ros2 lifecycle get` run as subprocesses, exactly as a user types them; an rclpy probe in
the test watches the graph. The C++ programs that PyPI lacks (robot_state_publisher,
rviz2, Gazebo's) are stand-ins (test/stand_ins) that record what the launch file started
them with; everything of this project runs for real. Each test has its own ROS_DOMAIN_ID;
every process runs in a process group of its own and is ended by its id.

Skipped, with the reason printed, where the upstream tools are not installed (see
test/launchutil.py; .ci/run installs them from ../shared/ros2-tools).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from launchutil import (
    BIN,
    REPO,
    ROS2,
    Session,
    launch,
    lifecycle_state,
    needs_ros2_tools,
    ros_env,
    stand_in_prefix,
    wait_active,
    wait_until,
)
from rosutil import Collector, spin_until

LAUNCH_FILES = ("sim.launch.py", "real.launch.py", "record.launch.py")
PICK = "pick up the red cube"


# --- the README's terminal commands -------------------------------------------------------


def readme_commands() -> list[str]:
    """Every `ros2 ...` / `rviz2 ...` command in the README: lines of ```bash blocks (with
    their continuation lines) and inline `code` spans; comments stripped."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            line = re.sub(r"\s{2,}", " ", line)
            if line.startswith(("ros2 ", "rviz2 ")):
                commands.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if span.startswith(("ros2 ", "rviz2 ")):
            commands.append(span.strip())
    return commands


def readme(command: str) -> str:
    """``command``, after checking that the README has it exactly so."""
    assert command in readme_commands(), f"the README no longer has: {command}"
    return command


# Each README command and the test that runs it exactly as written.
README_SIM = "ros2 launch flow_policy_node sim.launch.py checkpoint:=runs/demo/checkpoint rviz:=true"
README_PUB_FREE_TEXT = (
    "ros2 topic pub --once /flow_policy/command std_msgs/msg/String \"{data: 'grab the red block'}\""
)
README_PUB = (
    "ros2 topic pub --once /flow_policy/command std_msgs/msg/String \"{data: 'pick up the red cube'}\""
)
README_LIFECYCLE = "ros2 lifecycle get /flow_policy_node"
README_ACTION = (
    "ros2 action send_goal --feedback /flow_policy/execute flow_policy_msgs/action/ExecuteCommand "
    "\"{command: 'pick up the red cube', timeout_s: 30.0}\""
)
README_DISABLE = (
    'ros2 service call /flow_policy/set_enabled flow_policy_msgs/srv/SetEnabled "{enabled: false}"'
)
README_RVIZ = "rviz2 -d $(ros2 pkg prefix flow_policy_node)/share/flow_policy_node/rviz/flow_policy.rviz"
README_GAZEBO = (
    "ros2 launch flow_policy_node sim.launch.py simulator:=gazebo checkpoint:=runs/demo/checkpoint"
)
README_RECORD_SIM = "ros2 launch flow_policy_node record.launch.py episodes:=50 bag_dir:=bags"
README_RECORD_REAL = "ros2 launch flow_policy_node record.launch.py robot:=real"
README_START_EPISODE = (
    "ros2 service call /recorder/start_episode flow_policy_msgs/srv/StartEpisode "
    "\"{task: 'pick up the red cube'}\""
)
README_STOP_EPISODE = (
    'ros2 service call /recorder/stop_episode flow_policy_msgs/srv/StopEpisode "{success: true}"'
)
README_REAL = (
    "ros2 launch flow_policy_node real.launch.py checkpoint:=runs/demo/checkpoint "
    'camera_topics:="[camera/front/image_raw, camera/wrist/image_raw]" '
    "controller_topic:=arm_controller/joint_trajectory"
)
README_NAMESPACE = (
    "ros2 launch flow_policy_node sim.launch.py checkpoint:=runs/demo/checkpoint namespace:=robot1"
)
README_NAMESPACE_PUB = (
    "ros2 topic pub --once /robot1/flow_policy/command std_msgs/msg/String \"{data: 'pick up the red cube'}\""
)
README_RUN = "ros2 run flow_policy_node flow-policy --help"

COVERED = {
    **{
        f"ros2 launch flow_policy_node {f} --show-args": "test_show_args_by_package_name"
        for f in LAUNCH_FILES
    },
    README_SIM: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_LIFECYCLE: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_PUB: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_PUB_FREE_TEXT: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_ACTION: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_DISABLE: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_RVIZ: "test_readme_sim_commands_move_the_arm_and_succeed",
    README_GAZEBO: "test_gazebo_branch_runs_with_stand_ins_in_order",
    README_RECORD_SIM: "test_readme_record_sim_writes_episodes",
    README_RECORD_REAL: "test_record_real_gives_wall_clock_bags_that_convert",
    README_START_EPISODE: "test_record_real_gives_wall_clock_bags_that_convert",
    README_STOP_EPISODE: "test_record_real_gives_wall_clock_bags_that_convert",
    README_REAL: "test_real_launch_drives_the_sim_standing_in_for_the_arm",
    README_NAMESPACE: "test_two_robots_in_two_namespaces_do_not_cross",
    README_NAMESPACE_PUB: "test_two_robots_in_two_namespaces_do_not_cross",
    README_RUN: "test_readme_ros2_run",
}


# Code spans in the README that name a tool or a pattern rather than give a command.
NOT_COMMANDS = {
    "ros2 launch": "the tool's name",
    "ros2 launch flow_policy_node FILE": "a pattern (FILE)",
    "ros2 bag record": "rosbag2's recorder (not installable here; test_convert reads rosbag2 bags)",
    "ros2 bag play": "rosbag2's player (not installable here; test_recorder reads the QoS it replays)",
}


def test_every_readme_command_is_run_by_a_test() -> None:
    commands = [c for c in readme_commands() if c not in NOT_COMMANDS]
    assert commands, "no ros2 commands found in the README"
    missing = [c for c in commands if c not in COVERED]
    assert not missing, f"README commands that no test runs (add them to COVERED): {missing}"
    gone = [c for c in COVERED if c not in commands]
    assert not gone, f"commands tests run that the README no longer has: {gone}"


# --- fixtures -----------------------------------------------------------------------------


def _source_key() -> str:
    h = hashlib.sha256()
    sources = [*sorted((REPO / "flow_policy_node").rglob("*.py")), REPO / "description" / "arm.urdf"]
    for path in [*sources, Path(__file__).parent / "policy_checkpoints.py"]:
        if "ros" not in path.relative_to(REPO).parts[1:2]:  # node code does not change the checkpoint
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def pick_checkpoint(request, tmp_path_factory) -> Path:
    """A flow policy that picks the red cube (trained here, ~1-2 min; cached in .pytest_cache
    under a hash of the code and URDF it depends on, so reruns skip the training)."""
    from policy_checkpoints import train_pick_checkpoint

    cached = Path(request.config.cache.mkdir(f"pick-checkpoint-{_source_key()}"))
    if not (cached / "model.safetensors").exists():
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bar, 2500 times
            out = train_pick_checkpoint(tmp_path_factory.mktemp("pick") / "checkpoint")
        shutil.rmtree(cached)
        shutil.copytree(out, cached)
    return cached


@pytest.fixture(scope="session")
def camera_checkpoint(tmp_path_factory) -> Path:
    """A tiny policy that reads the front camera (so the node subscribes to it); seconds to train."""
    from policy_checkpoints import train_step_checkpoint

    with contextlib.redirect_stderr(io.StringIO()):
        return train_step_checkpoint(tmp_path_factory.mktemp("camera") / "checkpoint")


@pytest.fixture
def session(tmp_path: Path, ros_domain: int):
    s = Session(tmp_path, ros_env())
    try:
        s.start_daemon()
        yield s
    finally:
        s.close()


def workdir(tmp_path: Path, checkpoint: Path) -> Path:
    """A directory where the README's `checkpoint:=runs/demo/checkpoint` is ``checkpoint``."""
    work = tmp_path / "work"
    (work / "runs" / "demo").mkdir(parents=True)
    (work / "runs" / "demo" / "checkpoint").symlink_to(checkpoint)
    return work


def with_stand_ins(session: Session, tmp_path: Path, packages: dict, exit_after: dict | None = None) -> Path:
    """Put stand-ins for ``packages`` first on the ament prefix path and PATH; their log."""
    log = tmp_path / "stand_ins.jsonl"
    prefix = stand_in_prefix(tmp_path, packages, log, exit_after)
    session.env["AMENT_PREFIX_PATH"] = f"{prefix}:{session.env['AMENT_PREFIX_PATH']}"
    session.env["PATH"] = f"{prefix / 'bin'}:{session.env['PATH']}"
    return log


def stand_in_records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def parameters_of(record: dict) -> dict:
    """The parameters a stand-in was started with, merged over its --params-file files."""
    merged = {}
    for text in record["params"]:
        for body in (yaml.safe_load(text) or {}).values():
            merged.update(body.get("ros__parameters", {}))
    return merged


class Probe:
    """An rclpy node in the test: joint states, trajectories and task success of one robot."""

    def __init__(self, context, namespace: str = "") -> None:
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool
        from trajectory_msgs.msg import JointTrajectory

        self.node = Node(f"probe{namespace.replace('/', '_')}", context=context)
        ns = namespace.rstrip("/")
        self.joints, self.trajectories, self.success = Collector(), Collector(), Collector()
        self.node.create_subscription(JointState, f"{ns}/joint_states", self.joints, 50)
        self.node.create_subscription(
            JointTrajectory, f"{ns}/arm_controller/joint_trajectory", self.trajectories, 50
        )
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(Bool, f"{ns}/sim/task_success", self.success, latched)

    def spin(self, predicate, timeout: float) -> bool:
        return spin_until(self.node, predicate, timeout)

    def position(self) -> np.ndarray:
        return np.array(self.joints.messages[-1].position)

    def succeeded(self) -> bool:
        return any(m.data for m in self.success.messages)


# --- --show-args, statically resolvable things ----------------------------------------------


@needs_ros2_tools
@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_show_args_by_package_name(name: str, session: Session) -> None:
    out = session.run(readme(f"ros2 launch flow_policy_node {name} --show-args"))
    args = re.findall(r"^    '(\w+)':\n        (.*)$", out, re.M)
    names = [a for a, _ in args]
    assert {"namespace", "use_sim_time"} <= set(names), out
    if name != "record.launch.py":
        assert "robot_state_publisher" in names and "checkpoint" in names
    undescribed = [a for a, text in args if "no description given" in text or not text.strip()]
    assert not undescribed, f"arguments without a description: {undescribed}\n{out}"


@needs_ros2_tools
def test_readme_ros2_run(session: Session) -> None:
    out = session.run(readme(README_RUN))
    assert "demo" in out and "convert" in out and "train" in out


@needs_ros2_tools
def test_gazebo_branch_runs_with_stand_ins_in_order(session: Session, tmp_path: Path) -> None:
    """The Gazebo branch under real launch_ros, Gazebo's programs stood in for: ros_gz_sim's
    own launch file with our world, the bridge with its config file, `create` from
    robot_description, the controllers only after `create` exited; no MuJoCo sim node."""
    log = with_stand_ins(
        session,
        tmp_path,
        {
            "ros_gz_sim": ["create", "gz"],
            "ros_gz_bridge": ["parameter_bridge"],
            "controller_manager": ["spawner"],
            "robot_state_publisher": ["robot_state_publisher"],
        },
        exit_after={"create": 1.0},
    )
    gz = Path(session.env["AMENT_PREFIX_PATH"].split(":")[0]) / "lib" / "ros_gz_sim" / "gz"
    launch_dir = Path(session.env["AMENT_PREFIX_PATH"].split(":")[0]) / "share" / "ros_gz_sim" / "launch"
    launch_dir.mkdir(parents=True)
    (launch_dir / "gz_sim.launch.py").write_text(
        "from launch import LaunchDescription\n"
        "from launch.actions import DeclareLaunchArgument, ExecuteProcess\n"
        "from launch.substitutions import LaunchConfiguration\n\n\n"
        "def generate_launch_description():\n"
        "    return LaunchDescription([\n"
        "        DeclareLaunchArgument('gz_args', default_value=''),\n"
        f"        ExecuteProcess(cmd=[{str(gz)!r}, 'sim', LaunchConfiguration('gz_args')]),\n"
        "    ])\n"
    )
    (tmp_path / "no-checkpoint").mkdir()  # the policy node is not what this test is about
    work = workdir(tmp_path, tmp_path / "no-checkpoint")
    proc = session.start(readme(README_GAZEBO), "gazebo", cwd=work)

    def started() -> set[str]:
        return {r["executable"] for r in stand_in_records(log) if "args" in r}

    wait_until(lambda: "spawner" in started() or proc.popen.poll() is not None, 60, "spawner started")
    records = stand_in_records(log)
    by_exe = {r["executable"]: r for r in records if "args" in r}
    assert set(by_exe) == {"gz", "create", "parameter_bridge", "spawner", "robot_state_publisher"}, records
    world = by_exe["gz"]["args"]
    assert world[:2] == [
        "sim",
        "-r " + str(Path(BIN.parent / "share/flow_policy_node/description/flow_world.sdf")),
    ]
    assert by_exe["create"]["args"][:4] == ["-topic", "robot_description", "-name", "flow_arm"]
    config_file = parameters_of(by_exe["parameter_bridge"])["config_file"]
    assert Path(config_file).name == "gz_bridge.yaml" and Path(config_file).exists()
    create_exit = next(r["exit"] for r in records if r["executable"] == "create" and "exit" in r)
    assert by_exe["spawner"]["time"] >= create_exit, "the spawner started before create had spawned the arm"
    assert by_exe["spawner"]["args"][:2] == ["joint_state_broadcaster", "arm_controller"]
    for exe in ("parameter_bridge", "spawner", "robot_state_publisher", "create"):
        assert parameters_of(by_exe[exe]).get("use_sim_time") is True, (exe, by_exe[exe])
    urdf = parameters_of(by_exe["robot_state_publisher"])["robot_description"]
    assert "$(find" not in urdf and "flow_world" not in urdf and "world_to_base" in urdf
    assert "sim_node" not in proc.output()
    # Interrupt once every node is up (a policy node interrupted inside `import torch` ends with a
    # KeyboardInterrupt traceback, which is not what this test is about).
    wait_until(
        lambda: lifecycle_state(session, "/flow_policy_node") != "Node not found", 60, "policy node up"
    )
    proc.assert_stops_cleanly()


# --- the sim, end to end, with the README's commands -----------------------------------------


def attempt_pick(session: Session, probe: Probe, command: str, seed: int, timeout: float = 45.0) -> bool:
    """Reset the sim to pick_red at ``seed``, run ``command``, wait for task success."""
    session.run(
        [
            str(ROS2),
            "service",
            "call",
            "/sim/reset",
            "flow_policy_msgs/srv/ResetSim",
            f"{{task: pick_red, seed: {seed}}}",
        ]
    )
    probe.success.messages.clear()
    probe.spin(lambda: bool(probe.success.messages), 10)  # the reset's latched False
    probe.success.messages.clear()
    session.run(command)
    return probe.spin(probe.succeeded, timeout)


@needs_ros2_tools
@pytest.mark.slow
def test_readme_sim_commands_move_the_arm_and_succeed(
    session: Session, tmp_path: Path, pick_checkpoint, rclpy_context
) -> None:
    log = with_stand_ins(
        session, tmp_path, {"robot_state_publisher": ["robot_state_publisher"], "rviz2": ["rviz2"]}
    )
    work = workdir(tmp_path, pick_checkpoint)
    sim = session.start(readme(README_SIM), "sim", cwd=work)
    wait_active(session, "/flow_policy_node", sim)
    assert session.run(readme(README_LIFECYCLE)).startswith("active")
    probe = Probe(rclpy_context)
    assert probe.spin(lambda: len(probe.joints) > 5, 20), "no /joint_states from the sim"
    # The language model loads after activation; free text resolves once the node says so.
    wait_until(lambda: "free-text commands available" in sim.output(), 180, "free-text commands")

    # The README's topic commands: the arm moves and picks the cube (a retry on a new layout:
    # the policy picks about 9 in 10 layouts it has not seen).
    start = probe.position()
    assert any(
        attempt_pick(session, probe, readme(cmd), seed)
        for cmd, seed in ((README_PUB_FREE_TEXT, 0), (README_PUB, 1), (README_PUB, 2))
    ), sim.output()[-4000:]
    assert np.abs(probe.position()[:6] - start[:6]).max() > 0.2
    assert "command refused" not in sim.output(), "the README's free text was refused"

    # The action: success, with feedback on the way.
    session.run(
        [
            str(ROS2),
            "service",
            "call",
            "/sim/reset",
            "flow_policy_msgs/srv/ResetSim",
            "{task: pick_red, seed: 3}",
        ]
    )
    for attempt in range(3):
        out = session.run(readme(README_ACTION), timeout=60)
        if "SUCCEEDED" in out:
            break
        session.run(
            [
                str(ROS2),
                "service",
                "call",
                "/sim/reset",
                "flow_policy_msgs/srv/ResetSim",
                f"{{task: pick_red, seed: {4 + attempt}}}",
            ]
        )
    assert "Feedback:" in out and "resolved_task" in out, out
    assert "SUCCEEDED" in out and "success: true" in out.lower(), out

    # Moving again, then set_enabled false: the arm stops.
    session.run(
        [
            str(ROS2),
            "service",
            "call",
            "/sim/reset",
            "flow_policy_msgs/srv/ResetSim",
            "{task: pick_red, seed: 7}",
        ]
    )
    probe.trajectories.messages.clear()
    session.run(readme(README_PUB))
    assert probe.spin(lambda: len(probe.trajectories) >= 3, 20), "no chunks after the command"
    out = session.run(readme(README_DISABLE))
    assert "success=True" in out or "success: true" in out.lower(), out
    probe.spin(lambda: False, 1.0)  # what was in flight lands
    n, q0 = len(probe.trajectories), probe.position()
    probe.spin(lambda: False, 3.0)
    assert len(probe.trajectories) == n, "the policy still publishes after set_enabled false"
    assert np.abs(probe.position() - q0).max() < 0.02, "the arm still moves after set_enabled false"

    # RViz (a stand-in here) with the README's config file.
    def rviz() -> list[dict]:
        return [r for r in stand_in_records(log) if r.get("executable") == "rviz2" and "args" in r]

    assert len(rviz()) == 1  # from the launch file (rviz:=true)
    viewer = session.start(readme(README_RVIZ), "rviz2")
    wait_until(lambda: len(rviz()) == 2, 30, "rviz2 started by the README's command")
    viewer.stop()
    for r in rviz():
        assert Path(r["args"][r["args"].index("-d") + 1]).exists()

    probe.node.destroy_node()
    sim.assert_stops_cleanly()


@needs_ros2_tools
@pytest.mark.slow
def test_readme_record_sim_writes_episodes(session: Session, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    rec = session.start(readme(README_RECORD_SIM), "record", cwd=work)
    rec.wait_for(r"episode 1/50 pick_red seed 0", 120)
    rec.wait_for(r"episode 0 saved", 30)
    rec.assert_stops_cleanly()
    meta = yaml.safe_load((work / "bags" / "episode_0000" / "metadata.yaml").read_text())
    topics = {
        t["topic_metadata"]["name"] for t in meta["rosbag2_bagfile_information"]["topics_with_message_count"]
    }
    assert {"/joint_states", "/arm_controller/joint_trajectory", "/camera/front/image_raw"} <= topics


# --- a real arm: real.launch.py and record.launch.py robot:=real against a stand-in driver ----


def start_wall_clock_sim(session: Session, namespace: str = "") -> object:
    """The MuJoCo sim standing in for a real arm's driver: wall-clock stamps, no /clock."""
    args = [
        str(BIN / "sim_node"),
        "--ros-args",
        "--params-file",
        str(REPO / "config" / "sim_node.yaml"),
        "-p",
        "wall_clock:=true",
    ]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    return session.start(args, "arm")


def subscriptions_of(node, name: str, namespace: str = "/") -> set[str]:
    """Topics node ``namespace/name`` subscribes to; empty while discovery has not seen it."""
    from rclpy.node import NodeNameNonExistentError

    try:
        return {t for t, _ in node.get_subscriber_names_and_types_by_node(name, namespace)}
    except NodeNameNonExistentError:
        return set()


def publications_of(node, name: str, namespace: str = "/") -> set[str]:
    from rclpy.node import NodeNameNonExistentError

    try:
        return {t for t, _ in node.get_publisher_names_and_types_by_node(name, namespace)}
    except NodeNameNonExistentError:
        return set()


@needs_ros2_tools
@pytest.mark.slow
def test_real_launch_honours_the_yaml_topics_unless_overridden(
    session: Session, tmp_path: Path, camera_checkpoint, rclpy_context
) -> None:
    from rclpy.node import Node

    a = launch(
        session,
        "real.launch.py",
        f"checkpoint:={camera_checkpoint}",
        "robot_state_publisher:=false",
        "namespace:=a",
    )
    b = launch(
        session,
        "real.launch.py",
        f"checkpoint:={camera_checkpoint}",
        "robot_state_publisher:=false",
        "namespace:=b",
        "camera_topics:=[cam/one, cam/two/compressed]",
        "joint_state_topic:=/arm/joint_states",
        "controller_topic:=ctrl/joint_trajectory",
        name="launch-b",
    )
    wait_active(session, "/a/flow_policy_node", a)
    wait_active(session, "/b/flow_policy_node", b)
    node = Node("graph_probe", context=rclpy_context)
    real_yaml = yaml.safe_load((REPO / "config" / "policy_node.real.yaml").read_text())
    params = real_yaml["/**/flow_policy_node"]["ros__parameters"]
    # The checkpoint reads the front camera (the first of `cameras`): the node subscribes to it.
    assert params["cameras"][0] == "front"
    expected_a = {f"/a/{params['camera_topics'][0]}", f"/a/{params['joint_state_topic']}"}
    got: dict[str, set[str]] = {}
    spin_until(node, lambda: expected_a <= subscriptions_of(node, "flow_policy_node", "/a"), 20)
    got["a"] = subscriptions_of(node, "flow_policy_node", "/a")
    assert expected_a <= got["a"], got["a"]
    expected_b = {"/b/cam/one", "/arm/joint_states"}
    spin_until(node, lambda: expected_b <= subscriptions_of(node, "flow_policy_node", "/b"), 20)
    got["b"] = subscriptions_of(node, "flow_policy_node", "/b")
    assert expected_b <= got["b"] and not (got["b"] & {f"/b/{t}" for t in params["camera_topics"]}), got["b"]
    assert spin_until(
        node, lambda: "/b/ctrl/joint_trajectory" in publications_of(node, "flow_policy_node", "/b"), 20
    )
    trajectory_a = f"/a/{params['trajectory_topic']}"
    assert spin_until(node, lambda: trajectory_a in publications_of(node, "flow_policy_node", "/a"), 20)
    node.destroy_node()


@needs_ros2_tools
@pytest.mark.slow
def test_real_launch_drives_the_sim_standing_in_for_the_arm(
    session: Session, tmp_path: Path, pick_checkpoint, rclpy_context
) -> None:
    log = with_stand_ins(session, tmp_path, {"robot_state_publisher": ["robot_state_publisher"]})
    arm = start_wall_clock_sim(session)
    arm.wait_for("sim ready", 60)
    work = workdir(tmp_path, pick_checkpoint)
    real = session.start(readme(README_REAL), "real", cwd=work)
    wait_active(session, "/flow_policy_node", real)
    probe = Probe(rclpy_context)
    assert probe.spin(lambda: len(probe.joints) > 5, 20)
    stamp = probe.joints.messages[-1].header.stamp
    assert abs(stamp.sec + stamp.nanosec * 1e-9 - time.time()) < 5, (
        "the stand-in driver is not on wall-clock time"
    )
    start = probe.position()
    session.run(readme(README_PUB))
    assert probe.spin(lambda: len(probe.trajectories) >= 3, 30), real.output()[-4000:]
    assert probe.spin(lambda: np.abs(probe.position()[:6] - start[:6]).max() > 0.1, 30), real.output()[-4000:]
    rsp = [r for r in stand_in_records(log) if "args" in r]
    assert len(rsp) == 1 and parameters_of(rsp[0])["use_sim_time"] is False
    probe.node.destroy_node()
    real.assert_stops_cleanly()


@needs_ros2_tools
@pytest.mark.slow
def test_record_real_gives_wall_clock_bags_that_convert(session: Session, tmp_path: Path) -> None:
    from rosbags.highlevel import AnyReader

    arm = start_wall_clock_sim(session)
    arm.wait_for("sim ready", 60)
    work = tmp_path / "work"
    work.mkdir()
    t0 = time.time()
    rec = session.start(readme(README_RECORD_REAL), "record", cwd=work)
    rec.wait_for(r"recording \[", 60)
    # A human teleoperates a real arm; here the scripted teleop does, on the wall clock.
    session.start(
        [
            str(BIN / "teleop_node"),
            "--ros-args",
            "--params-file",
            str(REPO / "config" / "teleop_node.yaml"),
            "-p",
            "use_sim_time:=false",
            "-p",
            "episodes:=2",
            "-p",
            "record:=true",
        ],
        "teleop",
    ).wait_for(r"done: \d/2 successful", 120)
    # The README's own episode commands, on the same recorder.
    session.run(readme(README_START_EPISODE))
    time.sleep(1.0)  # an episode of a second of the arm standing still
    out = session.run(readme(README_STOP_EPISODE))
    assert "ok=True" in out or "ok: true" in out.lower(), out
    t1 = time.time()
    rec.assert_stops_cleanly()

    bags = sorted((work / "bags").glob("episode_*"))
    assert len(bags) == 3, bags
    for bag in bags:
        with AnyReader([bag]) as reader:
            stamps = {}
            for conn, t, _ in reader.messages():
                stamps.setdefault(conn.topic, []).append(t * 1e-9)
        js = np.array(stamps["/joint_states"])
        assert len(js) > 50 and np.all(np.diff(js) >= 0), bag
        assert t0 - 1 < js[0] and js[-1] < t1 + 1, (
            f"{bag}: stamps {js[0]:.1f}..{js[-1]:.1f} not within the wall-clock run {t0:.1f}..{t1:.1f}"
        )
    convert = session.run(
        [str(BIN / "flow-policy"), "convert", str(work / "bags"), str(work / "data"), "--fps", "10"],
        timeout=180,
    )
    info = json.loads((work / "data" / "meta" / "info.json").read_text())
    assert info["total_episodes"] >= 2, convert


# --- two robots side by side -----------------------------------------------------------------


@needs_ros2_tools
@pytest.mark.slow
def test_two_robots_in_two_namespaces_do_not_cross(
    session: Session, tmp_path: Path, pick_checkpoint, rclpy_context
) -> None:
    with_stand_ins(session, tmp_path, {"robot_state_publisher": ["robot_state_publisher"]})
    work = workdir(tmp_path, pick_checkpoint)
    one = session.start(readme(README_NAMESPACE), "robot1", cwd=work)
    two = launch(
        session,
        "sim.launch.py",
        f"checkpoint:={pick_checkpoint}",
        "namespace:=robot2",
        "robot_state_publisher:=false",
        name="robot2",
    )
    wait_active(session, "/robot1/flow_policy_node", one)
    wait_active(session, "/robot2/flow_policy_node", two)
    p1, p2 = Probe(rclpy_context, "/robot1"), Probe(rclpy_context, "/robot2")
    assert p1.spin(lambda: len(p1.joints) > 5, 20) and p2.spin(lambda: len(p2.joints) > 5, 20)
    topics = {t for t, _ in p1.node.get_topic_names_and_types()}
    assert "/robot1/clock" in topics and "/robot2/clock" in topics and "/clock" not in topics, topics
    assert "/joint_states" not in topics and "/flow_policy/command" not in topics, topics

    start1, start2 = p1.position(), p2.position()
    session.run(readme(README_NAMESPACE_PUB))
    assert p1.spin(lambda: np.abs(p1.position()[:6] - start1[:6]).max() > 0.1, 30), one.output()[-3000:]
    p2.spin(lambda: False, 1.0)
    assert len(p2.trajectories) == 0 and np.abs(p2.position() - start2).max() < 0.01, "robot2 moved"

    services = {s for s, _ in p1.node.get_service_names_and_types()}
    assert "/flow_policy/set_enabled" not in services and "/sim/reset" not in services, services
    assert {"/robot1/flow_policy/set_enabled", "/robot2/flow_policy/set_enabled"} <= services, services
    session.run(
        [
            str(ROS2),
            "service",
            "call",
            "/robot1/flow_policy/set_enabled",
            "flow_policy_msgs/srv/SetEnabled",
            "{enabled: false}",
        ]
    )
    p1.spin(lambda: False, 1.0)  # robot1's chunks from before it was disabled
    n1 = len(p1.trajectories)
    p2.trajectories.messages.clear()
    out = session.run(
        [
            str(ROS2),
            "action",
            "send_goal",
            "--feedback",
            "/robot2/flow_policy/execute",
            "flow_policy_msgs/action/ExecuteCommand",
            "{command: 'pick up the red cube', timeout_s: 5.0}",
        ],
        timeout=60,
    )
    assert "Feedback:" in out, out
    assert p2.spin(lambda: len(p2.trajectories) > 0, 5), "robot2's action did not move robot2"
    p1.spin(lambda: False, 1.0)
    assert len(p1.trajectories) == n1, "robot2's action moved robot1, or robot1 moves although disabled"
    for p in (p1, p2):
        p.node.destroy_node()
    one.assert_stops_cleanly()
    two.assert_stops_cleanly()
