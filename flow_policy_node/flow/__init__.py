"""flow (no ROS imports)."""
