"""Simulated arm + flow policy.

    ros2 launch flow_policy_node sim.launch.py checkpoint:=/path/to/ckpt
    ros2 launch flow_policy_node sim.launch.py checkpoint:=/path/to/ckpt namespace:=robot1
    ros2 launch flow_policy_node sim.launch.py simulator:=gazebo checkpoint:=/path/to/ckpt
    ros2 launch flow_policy_node sim.launch.py --show-args

simulator:=mujoco runs our sim_node (it owns /clock); simulator:=gazebo starts Gazebo Sim
through ros_gz_sim's gz_sim.launch.py with description/flow_world.sdf (table, three cubes,
front camera), spawns the URDF (gz_ros2_control, config/gazebo_controllers.yaml), bridges
/clock and both cameras (config/gz_bridge.yaml), and starts the controllers once the arm
exists. Every node runs in ``namespace`` with relative names, so a second robot starts
beside the first under another namespace; each robot's /clock is its own
(``/clock`` is remapped to ``<namespace>/clock``). The Gazebo branch is for one robot in
the root namespace (gz_ros2_control's controller manager is not namespaced here).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    RegisterEventHandler,
)
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

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
    namespace = LaunchConfiguration("namespace")
    use_sim_time = {"use_sim_time": LaunchConfiguration("use_sim_time")}
    mujoco = equals("simulator", "mujoco")
    gazebo = equals("simulator", "gazebo")
    # Every node of one robot: its namespace, and that robot's own clock.
    robot = {"namespace": namespace, "remappings": [("/clock", "clock")]}
    args = [
        DeclareLaunchArgument(
            "simulator",
            default_value="mujoco",
            choices=["mujoco", "gazebo"],
            description="mujoco: the embedded MuJoCo sim node; gazebo: Gazebo Sim with gz_ros2_control "
            "(needs ros_gz_sim, ros_gz_bridge, gz_ros2_control and the ros2_controllers)",
        ),
        DeclareLaunchArgument(
            "checkpoint",
            default_value="",
            description="policy checkpoint directory (empty: the policy node waits unconfigured)",
        ),
        DeclareLaunchArgument(
            "task", default_value="pick_red", description="MuJoCo sim task at start (pick_red, reach, ...)"
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="ROS namespace of every node, topic and service of this robot "
            "(e.g. robot1: /robot1/flow_policy/command); empty: the root namespace",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="true",
            choices=["true", "false"],
            description="run the nodes on the simulator's /clock",
        ),
        DeclareLaunchArgument(
            "params",
            default_value=str(SHARE / "config" / "policy_node.sim.yaml"),
            description="parameter file of the policy node",
        ),
        DeclareLaunchArgument(
            "robot_state_publisher",
            default_value="true",
            choices=["true", "false"],
            description="start robot_state_publisher (TF and robot_description for RViz and Gazebo)",
        ),
        DeclareLaunchArgument(
            "rviz", default_value="false", choices=["true", "false"], description="start RViz"
        ),
        DeclareLaunchArgument(
            "record",
            default_value="false",
            choices=["true", "false"],
            description="start the recorder node (episodes through recorder/start_episode)",
        ),
        DeclareLaunchArgument("bag_dir", default_value="bags", description="recorder output directory"),
    ]
    create = Node(
        package="ros_gz_sim",
        executable="create",
        arguments=["-topic", "robot_description", "-name", "flow_arm"],
        parameters=[use_sim_time],
        condition=gazebo,
        output="screen",
        **robot,
    )
    nodes = [
        Node(
            package="flow_policy_node",
            executable="sim_node",
            parameters=[str(SHARE / "config" / "sim_node.yaml"), {"task": LaunchConfiguration("task")}],
            condition=mujoco,
            output="screen",
            **robot,
        ),
        # Gazebo Sim through ros_gz_sim's own launch file (it finds gz and its resources).
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(
                PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
            ),
            launch_arguments={"gz_args": f"-r {SHARE / 'description' / 'flow_world.sdf'}"}.items(),
            condition=gazebo,
        ),
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            parameters=[{"config_file": str(SHARE / "config" / "gz_bridge.yaml")}, use_sim_time],
            condition=gazebo,
            output="screen",
            **robot,
        ),
        create,
        # Controllers only once the arm exists: `create` exits when the model is spawned.
        RegisterEventHandler(
            OnProcessExit(
                target_action=create,
                on_exit=[
                    Node(
                        package="controller_manager",
                        executable="spawner",
                        arguments=["joint_state_broadcaster", "arm_controller"],
                        parameters=[use_sim_time],
                        output="screen",
                        **robot,
                    )
                ],
            ),
            condition=gazebo,
        ),
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": urdf}, use_sim_time],
            condition=IfCondition(LaunchConfiguration("robot_state_publisher")),
            **robot,
        ),
        Node(
            package="flow_policy_node",
            executable="policy_node",
            parameters=[
                LaunchConfiguration("params"),
                {"checkpoint": LaunchConfiguration("checkpoint")},
                use_sim_time,
            ],
            output="screen",
            **robot,
        ),
        Node(
            package="flow_policy_node",
            executable="recorder_node",
            parameters=[
                str(SHARE / "config" / "recorder_node.yaml"),
                {"output_dir": LaunchConfiguration("bag_dir")},
                use_sim_time,
            ],
            condition=IfCondition(LaunchConfiguration("record")),
            output="screen",
            **robot,
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", str(SHARE / "rviz" / "flow_policy.rviz")],
            parameters=[use_sim_time],
            condition=IfCondition(LaunchConfiguration("rviz")),
            **robot,
        ),
    ]
    return LaunchDescription([*args, *nodes])
