"""Flow matching in plain PyTorch: paths and schedulers, time sampling, loss, ODE solvers,
inpainting by guidance.

No ROS imports. t = 0 is noise, t = 1 is data (see path.py).
"""

from flow_policy_node.flow.guidance import inpainting_velocity
from flow_policy_node.flow.loss import masked_mse
from flow_policy_node.flow.path import AffinePath, make_path
from flow_policy_node.flow.solver import SOLVERS, solve
from flow_policy_node.flow.time_sampling import sample_time

__all__ = [
    "SOLVERS",
    "AffinePath",
    "inpainting_velocity",
    "make_path",
    "masked_mse",
    "sample_time",
    "solve",
]
