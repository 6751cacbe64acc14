"""Flow policy on a real arm driven by ros2_control (JointTrajectoryController).

    ros2 launch flow_policy_node real.launch.py checkpoint:=/path/to/ckpt \
        camera_topic:=/camera/color/image_raw controller_topic:=/arm_controller/joint_trajectory
    ros2 launch flow_policy_node real.launch.py --show-args

Parameters come from config/policy_node.real.yaml (joint limits, rates, QoS); the
arguments override the topics. robot_state_publisher serves the URDF for RViz.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

SHARE = Path(get_package_share_directory("flow_policy_node"))


def generate_launch_description() -> LaunchDescription:
    urdf = (SHARE / "description" / "arm.urdf").read_text().replace("$(find flow_policy_node)", str(SHARE))
    args = [
        DeclareLaunchArgument("checkpoint", description="policy checkpoint directory"),
        DeclareLaunchArgument("params", default_value=str(SHARE / "config" / "policy_node.real.yaml")),
        DeclareLaunchArgument("camera_topic", default_value="/camera/front/image_raw"),
        DeclareLaunchArgument("wrist_camera_topic", default_value="/camera/wrist/image_raw"),
        DeclareLaunchArgument("controller_topic", default_value="/arm_controller/joint_trajectory"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"]),
    ]
    return LaunchDescription(
        [
            *args,
            Node(
                package="robot_state_publisher",
                executable="robot_state_publisher",
                parameters=[{"robot_description": urdf}],
            ),
            Node(
                package="flow_policy_node",
                executable="policy_node",
                parameters=[
                    LaunchConfiguration("params"),
                    {
                        "checkpoint": LaunchConfiguration("checkpoint"),
                        "camera_topics": [
                            LaunchConfiguration("camera_topic"),
                            LaunchConfiguration("wrist_camera_topic"),
                        ],
                        "trajectory_topic": LaunchConfiguration("controller_topic"),
                    },
                ],
                output="screen",
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                arguments=["-d", str(SHARE / "rviz" / "flow_policy.rviz")],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
