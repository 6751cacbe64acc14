"""Run-time control logic of the policy node, free of ROS so that it is unit-testable.

commands     free-text command -> one of the checkpoint's tasks (or a clear refusal)
chunking     action-chunk scheduling: real-time chunking, temporal ensemble, naive
safety       joint limits, per-step velocity limits, non-finite guards
observations latest sensor data per stream, staleness, image size rules
"""
