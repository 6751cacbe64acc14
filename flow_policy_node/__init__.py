"""flow_policy_node: a flow-matching robot policy for ROS 2.

Subpackages ``flow``, ``models``, ``data``, ``train`` and ``sim`` never import rclpy;
``ros`` holds the thin node adapters over them.
"""

__version__ = "0.1.0"
