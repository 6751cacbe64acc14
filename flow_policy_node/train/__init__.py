"""train (no ROS imports)."""
