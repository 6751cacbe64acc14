"""Training loop, configs and checkpoints (no ROS imports)."""
