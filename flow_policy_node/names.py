"""Every topic, service and action name of the suite: the topic contract in one place.

Names are relative, so that under a namespace (``--ros-args -r __ns:=/robot1``) they are
the robot's own (``/robot1/joint_states``); ``/clock`` and ``/diagnostics`` are absolute,
as ROS defines them. The config/*.yaml files spell the same values out for users to edit;
these are the defaults in code. Bags record fully qualified names: see :func:`absolute`.
"""

from __future__ import annotations

# The robot (a ros2_control arm and its cameras, or sim_node standing in for one)
JOINT_STATES = "joint_states"
TRAJECTORY = "arm_controller/joint_trajectory"  # the JointTrajectoryController's command topic
CAMERA_TOPIC_FORMAT = "camera/{camera}/image_raw"
CLOCK = "/clock"

# The simulator's own
TASK_SUCCESS = "sim/task_success"
OBJECT_POSES = "sim/object_poses"
SIM_RESET = "sim/reset"

# Commands and goals (RViz publishes its clicks on clicked_point)
COMMAND = "flow_policy/command"
GOAL = "clicked_point"

# The policy node
POLICY_NODE = "flow_policy_node"
POLICY_STATUS = "flow_policy/status"
PREDICTED_PATH = "flow_policy/predicted_path"
SET_ENABLED = "flow_policy/set_enabled"
POLICY_RESET = "flow_policy/reset"
EXECUTE = "flow_policy/execute"
DIAGNOSTICS = "/diagnostics"
POLICY_GET_STATE = f"{POLICY_NODE}/get_state"  # rclpy's lifecycle service

# The recorder
RECORDER_NODE = "recorder_node"
START_EPISODE = "recorder/start_episode"
STOP_EPISODE = "recorder/stop_episode"


def camera_topic(camera: str) -> str:
    return CAMERA_TOPIC_FORMAT.format(camera=camera)


def absolute(name: str) -> str:
    """The name in the root namespace, as a bag recorded there names it (``/joint_states``)."""
    return name if name.startswith("/") else "/" + name
