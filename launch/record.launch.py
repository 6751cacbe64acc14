"""Record teleop demonstrations.

    ros2 launch flow_policy_node record.launch.py episodes:=50 bag_dir:=bags   # sim + scripted teleop
    ros2 launch flow_policy_node record.launch.py robot:=real                  # your arm + your teleop
    ros2 launch flow_policy_node record.launch.py --show-args

Episodes: `ros2 service call /recorder/start_episode flow_policy_msgs/srv/StartEpisode
"{task: 'pick up the red cube'}"` and `.../stop_episode` (the scripted teleop calls them).
robot:=sim runs on the simulator's /clock; robot:=real on the wall clock (a real arm
publishes no /clock), so bags are stamped with the time of day. use_sim_time overrides.
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
    is_sim = PythonExpression(["'", LaunchConfiguration("robot"), "' == 'sim'"])
    sim = IfCondition(is_sim)
    # use_sim_time:=auto follows the robot: simulated time in sim, the wall clock on a real arm.
    use_sim_time = {
        "use_sim_time": PythonExpression(
            [
                "'",
                LaunchConfiguration("use_sim_time"),
                "' == 'true' or ('",
                LaunchConfiguration("use_sim_time"),
                "' == 'auto' and ",
                is_sim,
                ")",
            ]
        )
    }
    robot = {"namespace": LaunchConfiguration("namespace"), "remappings": [("/clock", "clock")]}
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "robot",
                default_value="sim",
                choices=["sim", "real"],
                description="sim: MuJoCo sim node + scripted teleop; real: only the recorder, for your "
                "arm's driver and teleop",
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value="",
                description="ROS namespace of this robot's nodes, topics and services "
                "(e.g. robot1: /robot1/recorder/start_episode); empty: the root namespace",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="auto",
                choices=["auto", "true", "false"],
                description="stamp with the simulator's /clock; auto: true for robot:=sim, false for "
                "robot:=real",
            ),
            DeclareLaunchArgument(
                "bag_dir", default_value="bags", description="directory of the episode bags"
            ),
            DeclareLaunchArgument(
                "episodes", default_value="10", description="scripted teleop episodes (robot:=sim)"
            ),
            DeclareLaunchArgument(
                "storage", default_value="mcap", choices=["mcap", "sqlite3"], description="rosbag2 storage"
            ),
            Node(
                package="flow_policy_node",
                executable="sim_node",
                parameters=[str(SHARE / "config" / "sim_node.yaml")],
                condition=sim,
                **robot,
            ),
            Node(
                package="flow_policy_node",
                executable="teleop_node",
                parameters=[
                    str(SHARE / "config" / "teleop_node.yaml"),
                    {"episodes": LaunchConfiguration("episodes"), "record": True},
                    use_sim_time,
                ],
                condition=sim,
                output="screen",
                **robot,
            ),
            Node(
                package="flow_policy_node",
                executable="recorder_node",
                parameters=[
                    str(SHARE / "config" / "recorder_node.yaml"),
                    {"output_dir": LaunchConfiguration("bag_dir"), "storage": LaunchConfiguration("storage")},
                    use_sim_time,
                ],
                output="screen",
                **robot,
            ),
        ]
    )
