"""Flow policy on a real arm driven by ros2_control (JointTrajectoryController).

    ros2 launch flow_policy_node real.launch.py checkpoint:=/path/to/ckpt
    ros2 launch flow_policy_node real.launch.py checkpoint:=/path/to/ckpt \
        camera_topics:="[camera/color/image_raw, wrist_camera/image_raw/compressed]"
    ros2 launch flow_policy_node real.launch.py --show-args

Parameters come from config/policy_node.real.yaml (or ``params``): cameras, topics, joint
limits, rates, QoS. The topic arguments override the file's values only when given; left
empty, the file's topics hold. The arm's driver stamps with the wall clock and publishes
no /clock, so use_sim_time is false by default. robot_state_publisher serves the URDF
(TF for RViz); turn it off where the arm's own bringup already runs one.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

SHARE = Path(get_package_share_directory("flow_policy_node"))

# launch argument -> policy node parameter; "" (the default) keeps the parameter file's value.
TOPIC_ARGUMENTS = {
    "cameras": ("cameras", "camera names, in the checkpoint's terms, as a YAML list: [front, wrist]"),
    "camera_topics": (
        "camera_topics",
        "one topic per camera, as a YAML list: [camera/color/image_raw, wrist/image_raw/compressed] "
        "(a topic ending in /compressed is read as CompressedImage)",
    ),
    "joint_state_topic": ("joint_state_topic", "sensor_msgs/JointState of the arm"),
    "controller_topic": (
        "trajectory_topic",
        "trajectory_msgs/JointTrajectory topic of the arm's JointTrajectoryController",
    ),
}


def policy_node(context: LaunchContext) -> list[Node]:
    overrides = {}
    for argument, (parameter, _) in TOPIC_ARGUMENTS.items():
        value = LaunchConfiguration(argument).perform(context).strip()
        if value:
            # YAML, as on the command line of a node: "[a, b]" is a list, "a" a string.
            overrides[parameter] = yaml.safe_load(value)
    overrides["checkpoint"] = LaunchConfiguration("checkpoint").perform(context)
    overrides["use_sim_time"] = LaunchConfiguration("use_sim_time").perform(context) == "true"
    return [
        Node(
            package="flow_policy_node",
            executable="policy_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params"), overrides],
            output="screen",
        )
    ]


def generate_launch_description() -> LaunchDescription:
    urdf = (SHARE / "description" / "arm.urdf").read_text().replace("$(find flow_policy_node)", str(SHARE))
    namespace = LaunchConfiguration("namespace")
    use_sim_time = {"use_sim_time": LaunchConfiguration("use_sim_time")}
    args = [
        DeclareLaunchArgument("checkpoint", description="policy checkpoint directory"),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="ROS namespace of this robot's nodes, topics and services "
            "(e.g. robot1: /robot1/flow_policy/command); empty: the root namespace",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="run on /clock; false on a real arm, whose driver stamps with the wall clock",
        ),
        DeclareLaunchArgument(
            "params",
            default_value=str(SHARE / "config" / "policy_node.real.yaml"),
            description="parameter file of the policy node",
        ),
        *(
            DeclareLaunchArgument(
                name, default_value="", description=f"{text}; empty: the parameter file's {parameter}"
            )
            for name, (parameter, text) in TOPIC_ARGUMENTS.items()
        ),
        DeclareLaunchArgument(
            "robot_state_publisher",
            default_value="true",
            choices=["true", "false"],
            description="start robot_state_publisher with description/arm.urdf (false where the "
            "arm's bringup runs its own)",
        ),
        DeclareLaunchArgument(
            "rviz", default_value="false", choices=["true", "false"], description="start RViz"
        ),
    ]
    return LaunchDescription(
        [
            *args,
            Node(
                package="robot_state_publisher",
                executable="robot_state_publisher",
                namespace=namespace,
                parameters=[{"robot_description": urdf}, use_sim_time],
                condition=IfCondition(LaunchConfiguration("robot_state_publisher")),
            ),
            OpaqueFunction(function=policy_node),
            Node(
                package="rviz2",
                executable="rviz2",
                namespace=namespace,
                arguments=["-d", str(SHARE / "rviz" / "flow_policy.rviz")],
                parameters=[use_sim_time],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
