"""flow_policy_node: a flow-matching robot policy for ROS 2.

Subpackages ``flow``, ``models``, ``data``, ``train`` and ``sim`` never import rclpy;
``ros`` holds the thin node adapters over them.
"""

import os

# Before torch loads OpenMP (every entry point imports this package first): OpenMP's
# default lets a thread that waits for its team spin. On 2 cores with anything else running
# (a test, a sim, a second training), the team mate it waits for is off the CPU, and
# training with 2 threads fell from 5 to 0.7 steps/s; passive waiting keeps it at 1-thread
# speed under load and costs nothing measurable when the machine is quiet
# (benchmarks/train_load.py). A value the user sets wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
