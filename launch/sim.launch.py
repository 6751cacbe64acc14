"""Simulated arm + flow policy.

    ros2 launch flow_policy_node sim.launch.py checkpoint:=/path/to/ckpt
    ros2 launch flow_policy_node sim.launch.py simulator:=gazebo rviz:=true
    ros2 launch flow_policy_node sim.launch.py --show-args

simulator:=mujoco runs our sim_node (it owns /clock); simulator:=gazebo spawns the same
URDF in Gazebo with gz_ros2_control and the controllers in config/gazebo_controllers.yaml.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from launch import LaunchDescription

SHARE = Path(get_package_share_directory("flow_policy_node"))


def equals(argument: str, value: str) -> IfCondition:
    # LaunchConfigurationEquals is deprecated from Jazzy and EqualsSubstitution is not in
    # Humble; a Python expression works on every distribution.
    return IfCondition(PythonExpression(["'", LaunchConfiguration(argument), f"' == '{value}'"]))


def generate_launch_description() -> LaunchDescription:
    # The URDF names the controllers file for gz_ros2_control as $(find flow_policy_node)/...;
    # it is plain URDF, not xacro, so the path is filled in here.
    urdf = (SHARE / "description" / "arm.urdf").read_text().replace("$(find flow_policy_node)", str(SHARE))
    use_sim_time = {"use_sim_time": True}
    mujoco = equals("simulator", "mujoco")
    gazebo = equals("simulator", "gazebo")
    args = [
        DeclareLaunchArgument("simulator", default_value="mujoco", choices=["mujoco", "gazebo"]),
        DeclareLaunchArgument("checkpoint", default_value="", description="policy checkpoint directory"),
        DeclareLaunchArgument("task", default_value="pick_red", description="sim task at start"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"]),
        DeclareLaunchArgument("record", default_value="false", choices=["true", "false"]),
        DeclareLaunchArgument("bag_dir", default_value="bags", description="recorder output"),
    ]
    nodes = [
        Node(
            package="flow_policy_node",
            executable="sim_node",
            parameters=[str(SHARE / "config" / "sim_node.yaml"), {"task": LaunchConfiguration("task")}],
            condition=mujoco,
            output="screen",
        ),
        ExecuteProcess(cmd=["gz", "sim", "-r", "empty.sdf"], condition=gazebo, output="screen"),
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            arguments=["/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock"],
            condition=gazebo,
        ),
        Node(
            package="ros_gz_sim",
            executable="create",
            arguments=["-topic", "robot_description", "-name", "flow_arm"],
            condition=gazebo,
        ),
        Node(
            package="controller_manager",
            executable="spawner",
            arguments=["joint_state_broadcaster", "arm_controller"],
            parameters=[use_sim_time],
            condition=gazebo,
        ),
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": urdf}, use_sim_time],
        ),
        Node(
            package="flow_policy_node",
            executable="policy_node",
            parameters=[
                str(SHARE / "config" / "policy_node.sim.yaml"),
                {"checkpoint": LaunchConfiguration("checkpoint")},
            ],
            output="screen",
        ),
        Node(
            package="flow_policy_node",
            executable="recorder_node",
            parameters=[
                str(SHARE / "config" / "recorder_node.yaml"),
                {"output_dir": LaunchConfiguration("bag_dir")},
            ],
            condition=IfCondition(LaunchConfiguration("record")),
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", str(SHARE / "rviz" / "flow_policy.rviz")],
            parameters=[use_sim_time],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ]
    return LaunchDescription([*args, *nodes])
