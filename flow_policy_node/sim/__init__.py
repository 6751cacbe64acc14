"""sim (no ROS imports)."""
