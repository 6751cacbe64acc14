"""Record teleop demonstrations.

    ros2 launch flow_policy_node record.launch.py                     # sim + scripted teleop
    ros2 launch flow_policy_node record.launch.py robot:=real          # your arm + your teleop
    ros2 launch flow_policy_node record.launch.py --show-args

Episodes: `ros2 service call /recorder/start_episode flow_policy_msgs/srv/StartEpisode
"{task: 'pick up the red cube'}"` and `.../stop_episode` (the scripted teleop calls them).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from launch import LaunchDescription

SHARE = Path(get_package_share_directory("flow_policy_node"))


def generate_launch_description() -> LaunchDescription:
    sim = IfCondition(PythonExpression(["'", LaunchConfiguration("robot"), "' == 'sim'"]))
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="sim", choices=["sim", "real"]),
            DeclareLaunchArgument("bag_dir", default_value="bags"),
            DeclareLaunchArgument(
                "episodes", default_value="10", description="scripted teleop episodes (sim)"
            ),
            DeclareLaunchArgument("storage", default_value="mcap", choices=["mcap", "sqlite3"]),
            Node(
                package="flow_policy_node",
                executable="sim_node",
                parameters=[str(SHARE / "config" / "sim_node.yaml")],
                condition=sim,
            ),
            Node(
                package="flow_policy_node",
                executable="teleop_node",
                parameters=[
                    str(SHARE / "config" / "teleop_node.yaml"),
                    {"episodes": LaunchConfiguration("episodes"), "record": True},
                ],
                condition=sim,
            ),
            Node(
                package="flow_policy_node",
                executable="recorder_node",
                parameters=[
                    str(SHARE / "config" / "recorder_node.yaml"),
                    {"output_dir": LaunchConfiguration("bag_dir"), "storage": LaunchConfiguration("storage")},
                ],
                output="screen",
            ),
        ]
    )
