"""Issues 7 and 14: launch files, parameter files, URDF and Gazebo files, checked statically.

What runs the launch files for real is test_ros2_launch.py. Here: the files name only
executables, parameter files and packages that exist (and that package.xml depends on),
every ROS name in them is relative (so a namespace moves a whole robot), and the Gazebo
branch's pieces fit together: the URDF parses and is fixed to the world, every
ros2_control joint is in the controllers file and back, the world has the cubes and the
front camera, and the bridge carries exactly the cameras the sensors publish and the
policy reads.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from launchutil import TOOLS_MISSING

REPO = Path(__file__).resolve().parent.parent
LAUNCH = sorted((REPO / "launch").glob("*.launch.py"))
CONFIG = REPO / "config"
CONSOLE_SCRIPTS = set(re.findall(r'"(\w+) = flow_policy_node', (REPO / "setup.py").read_text()))
NODE_PARAMS = sorted(
    p for p in CONFIG.glob("*.yaml") if p.name not in ("gz_bridge.yaml", "gazebo_controllers.yaml")
)


def test_there_are_three_launch_files() -> None:
    assert [p.name for p in LAUNCH] == ["real.launch.py", "record.launch.py", "sim.launch.py"]


def _calls(path: Path) -> list[dict]:
    tree = ast.parse(path.read_text())
    return [{k.arg: k.value for k in call.keywords} for call in ast.walk(tree) if isinstance(call, ast.Call)]


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_launch_file_names_existing_executables_and_files(path: Path) -> None:
    for kw in _calls(path):
        if isinstance(kw.get("package"), ast.Constant) and kw["package"].value == "flow_policy_node":
            exe = kw["executable"].value
            assert exe in CONSOLE_SCRIPTS, f"{path.name}: no console script {exe!r}"
    text = path.read_text()
    for name in re.findall(r'"([\w.]+\.(?:yaml|rviz|urdf|sdf))"', text) + re.findall(
        r"'([\w.]+\.(?:yaml|rviz|urdf|sdf))'", text
    ):
        assert list(REPO.glob(f"*/{name}")), f"{path.name} names {name}, which is not in the repository"


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_launch_files_declare_namespace_and_use_sim_time_with_descriptions(path: Path) -> None:
    declared = {}
    tree = ast.parse(path.read_text())
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument":
            kw = {k.arg: k.value for k in call.keywords}
            name = call.args[0].value if isinstance(call.args[0], ast.Constant) else "<computed>"
            declared[name] = "description" in kw
    assert {"namespace", "use_sim_time"} <= set(declared), declared
    if path.name != "record.launch.py":
        assert "robot_state_publisher" in declared
    assert all(declared.values()), f"{path.name}: arguments without a description: {declared}"


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_launch_files_use_relative_ros_names(path: Path) -> None:
    """Absolute names would not move with the namespace; /clock is remapped per robot."""
    for s in _strings(path):
        name = s.split("@")[0]
        if re.fullmatch(r"/[a-z_]+(/[a-z_]+)*", name) and name != "/clock":
            raise AssertionError(f"{path.name} names {s!r} absolutely")


def test_parameter_files_spell_the_topic_names_of_the_code() -> None:
    """config/*.yaml write every name out for users to edit; out of the box they must be
    flow_policy_node/names.py's, the names the code uses by default (a real arm's file
    names its own cameras and success topic)."""
    from flow_policy_node import names
    from flow_policy_node.control.config import PolicyNodeConfig
    from flow_policy_node.ros.recorder_node import DEFAULT_TOPICS

    def params(file: str) -> dict:
        (node,) = yaml.safe_load((CONFIG / file).read_text()).values()
        return node["ros__parameters"]

    topics = {f: v for f, v in vars(PolicyNodeConfig()).items() if f.endswith(("_topic", "_topics"))}
    assert {k: v for k, v in params("policy_node.sim.yaml").items() if k in topics} == topics
    real = params("policy_node.real.yaml")
    assert {k: real[k] for k in topics if k not in ("camera_topics", "task_success_topic")} == {
        k: v for k, v in topics.items() if k not in ("camera_topics", "task_success_topic")
    }
    sim = params("sim_node.yaml")
    assert (sim["image_topic_format"], sim["trajectory_topic"]) == (
        names.CAMERA_TOPIC_FORMAT,
        names.TRAJECTORY,
    )
    recorder = params("recorder_node.yaml")
    assert recorder["topics"] == DEFAULT_TOPICS and recorder["command_topic"] == names.COMMAND
    assert recorder["latched_topics"] == [names.GOAL, names.TASK_SUCCESS]
    teleop = params("teleop_node.yaml")
    assert (teleop["trajectory_topic"], teleop["command_topic"]) == (names.TRAJECTORY, names.COMMAND)
    assert teleop["recorder_node"] == names.RECORDER_NODE


def test_package_xml_depends_on_every_package_a_launch_file_starts() -> None:
    depends = set(re.findall(r"<exec_depend>([\w-]+)</exec_depend>", (REPO / "package.xml").read_text()))
    for path in LAUNCH:
        packages = {kw["package"].value for kw in _calls(path) if isinstance(kw.get("package"), ast.Constant)}
        packages |= set(re.findall(r'FindPackageShare\("(\w+)"\)', path.read_text()))
        packages.discard("flow_policy_node")
        assert packages <= depends, f"{path.name}: no exec_depend on {packages - depends}"
    for pkg in ("ros_gz_sim", "ros_gz_bridge", "controller_manager", "gz_ros2_control"):
        assert pkg in depends
    for pkg in ("joint_state_broadcaster", "joint_trajectory_controller"):
        assert pkg in depends


def test_every_console_script_is_where_launch_ros_looks_for_it() -> None:
    """launch_ros runs a Node from <prefix of its package>/lib/<package>/<executable>."""
    import os

    from ament_index_python.packages import get_package_prefix

    lib = Path(get_package_prefix("flow_policy_node")) / "lib" / "flow_policy_node"
    for exe in sorted(CONSOLE_SCRIPTS):
        assert os.access(lib / exe, os.X_OK), f"{lib / exe} is missing or not executable"


def test_launch_files_are_found_by_package_name() -> None:
    """`ros2 launch PACKAGE FILE` walks share/PACKAGE without following directory links."""
    import os

    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("flow_policy_node"))
    found = {f for _, _, files in os.walk(share) for f in files if f.endswith(".launch.py")}
    assert found == {p.name for p in LAUNCH}


def test_launch_files_fill_in_the_urdf_package_paths() -> None:
    """The URDF is plain URDF: a launch file that serves it must resolve $(find ...) itself."""
    urdf = (REPO / "description" / "arm.urdf").read_text()
    packages = set(re.findall(r"\$\(find (\w+)\)", urdf))
    for path in LAUNCH:
        text = path.read_text()
        if "arm.urdf" in text and packages:
            for pkg in packages:
                assert f'.replace("$(find {pkg})"' in text, f"{path.name} serves $(find {pkg}) unresolved"


@pytest.mark.parametrize("path", NODE_PARAMS, ids=lambda p: p.name)
def test_node_parameter_files_match_any_namespace_and_use_relative_names(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for key, body in data.items():
        assert key.startswith("/**/"), f"{path.name}: {key!r} matches only the root namespace; use /**/{key}"
        params = body["ros__parameters"]
        for name, value in params.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, str) and (name.endswith(("topic", "topics", "_format")) or name == "topics"):
                    assert not v.startswith("/"), f"{path.name}: {name} {v!r} is absolute"


def test_recorder_has_no_fixed_clock_and_real_arm_runs_on_the_wall_clock() -> None:
    recorder = yaml.safe_load((CONFIG / "recorder_node.yaml").read_text())
    assert "use_sim_time" not in recorder["/**/recorder_node"]["ros__parameters"]
    real = yaml.safe_load((CONFIG / "policy_node.real.yaml").read_text())
    assert real["/**/flow_policy_node"]["ros__parameters"]["use_sim_time"] is False


# --- Gazebo branch --------------------------------------------------------------------------


def _urdf() -> ET.Element:
    return ET.parse(REPO / "description" / "arm.urdf").getroot()


def test_urdf_is_fixed_to_the_world() -> None:
    root = _urdf()
    links = {link.get("name") for link in root.findall("link")}
    children = {j.find("child").get("link") for j in root.findall("joint")}
    roots = links - children
    assert roots == {"world"}, roots
    world_joint = [j for j in root.findall("joint") if j.find("parent").get("link") == "world"]
    assert [(j.get("type"), j.find("child").get("link")) for j in world_joint] == [("fixed", "base_link")]


def test_ros2_control_joints_and_controllers_match() -> None:
    root = _urdf()
    movable = {j.get("name"): j for j in root.findall("joint") if j.get("type") != "fixed"}
    control = root.find("ros2_control")
    joints = {j.get("name"): j for j in control.findall("joint")}
    assert set(joints) == set(movable), "every movable URDF joint (the mimic finger too) is in <ros2_control>"
    commanded = [n for n, j in joints.items() if j.find("command_interface") is not None]
    mimics = [n for n, j in movable.items() if j.find("mimic") is not None]
    assert set(joints) - set(commanded) == set(mimics), "only mimic joints are state-only"
    for name in mimics:
        assert joints[name].find("state_interface[@name='position']") is not None
    controllers = yaml.safe_load((CONFIG / "gazebo_controllers.yaml").read_text())
    params = controllers["arm_controller"]["ros__parameters"]
    assert params["joints"] == commanded, "arm_controller's joints are exactly the commanded ones"
    manager = controllers["controller_manager"]["ros__parameters"]
    assert "use_sim_time" not in manager, "the same file serves a real arm, which runs on the wall clock"
    assert {"joint_state_broadcaster", "arm_controller"} <= set(manager)


def test_gazebo_world_cameras_and_bridge_fit_together() -> None:
    world = ET.parse(REPO / "description" / "flow_world.sdf").getroot()
    models = {m.get("name") for m in world.iter("model")}
    assert {"cube_red", "cube_green", "cube_blue", "table", "front_camera"} <= models
    assert any("sensors-system" in p.get("filename", "") for p in world.iter("plugin"))
    gz_topics = {s.findtext("topic") for s in world.iter("sensor")}
    gz_topics |= {s.findtext("topic") for s in _urdf().iter("sensor")}
    bridge = yaml.safe_load((CONFIG / "gz_bridge.yaml").read_text())
    images = {
        b["gz_topic_name"]: b["ros_topic_name"]
        for b in bridge
        if b["ros_type_name"] == "sensor_msgs/msg/Image"
    }
    assert set(images) == gz_topics, (images, gz_topics)
    sim = yaml.safe_load((CONFIG / "policy_node.sim.yaml").read_text())["/**/flow_policy_node"][
        "ros__parameters"
    ]
    assert sorted(images.values()) == sorted(sim["camera_topics"]), "the bridge feeds what the policy reads"
    assert any(b["ros_topic_name"] == "/clock" and b["direction"] == "GZ_TO_ROS" for b in bridge)


# --- with the upstream launch/launch_ros ----------------------------------------------------


@pytest.mark.skipif(bool(TOOLS_MISSING), reason=TOOLS_MISSING)
@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_launch_description_builds(path: Path) -> None:
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ld = module.generate_launch_description()
    assert isinstance(ld, LaunchDescription)
    names = [a.name for a in ld.get_launch_arguments()]
    assert len(names) == len(set(names)) and names
