"""ROS 2 adapters: rclpy nodes and message <-> numpy conversions.

The only subpackage that imports rclpy. Import :mod:`flow_policy_node.ros.env` first
in every node entry point: it turns a missing ROS 2 or a missing interface build into
a message that says what to run.
"""
