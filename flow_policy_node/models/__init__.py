"""Observation encoders, velocity networks, FlowPolicy and baselines (no ROS imports)."""
