"""models (no ROS imports)."""
