"""flow_policy_node: a flow-matching robot policy for ROS 2.

Subpackages ``flow``, ``models``, ``data``, ``train`` and ``sim`` never import rclpy;
``ros`` holds the thin node adapters over them.
"""

import os

# Before torch loads OpenMP (every entry point imports this package first): a thread of
# torch's OpenMP team (libgomp) that waits for its team mate spins for GOMP_SPINCOUNT turns
# (300k by default) before it sleeps. On 2 cores with anything else running (a test, a sim,
# a second training) the team mate is off the CPU, and 2-thread training fell to a fifth of
# its quiet speed. 10k turns keep ~95% of the quiet speed and twice the loaded one;
# passive waiting (no spinning) costs a quarter of the quiet speed (benchmarks/train_load.py).
# A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins (libgomp lets the spin count
# override the policy, so neither is touched when either is set).
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"
