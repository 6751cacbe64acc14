"""data (no ROS imports)."""
