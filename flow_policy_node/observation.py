"""What a policy sees and returns, shared by the simulator, datasets, policies and nodes.

Vectors follow :mod:`flow_policy_node.robot` order (arm joints, then gripper).
Dataset/batch keys follow LeRobotDataset naming so that a batch from our dataset reader
and a batch built from a live :class:`Observation` look the same to a policy:

====================================  =============================  ===========
key                                   shape (batch B, chunk H)       dtype
====================================  =============================  ===========
``observation.state``                 (B, D)                         float32
``observation.images.<camera>``       (B, 3, h, w), values in [0, 1] float32
``observation.goal``                  (B, 3), zeros when no goal     float32
``task_index``                        (B,)                           int64
``action``                            (B, H, D)                      float32
``action_is_pad``                     (B, H), True past episode end  bool
====================================  =============================  ===========
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

STATE = "observation.state"
GOAL = "observation.goal"
IMAGE_PREFIX = "observation.images."
ACTION = "action"
ACTION_IS_PAD = "action_is_pad"
TASK_INDEX = "task_index"

CAMERAS = ("front", "wrist")
IMAGE_SIZE = (96, 96)  # (height, width)
FPS = 10


def image_key(camera: str) -> str:
    return f"{IMAGE_PREFIX}{camera}"


@dataclass
class Observation:
    """One time step as a policy sees it.

    state:  (D,) float32 joint positions (rad, gripper finger in m), robot order.
    images: camera name -> (h, w, 3) uint8 RGB.
    task:   the task text, e.g. "pick up the red cube".
    goal:   (3,) float32 goal point in the arm's base frame (m), or None.
    stamp:  seconds (sim time or ROS time) of the observation.
    """

    state: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    task: str = ""
    goal: np.ndarray | None = None
    stamp: float = 0.0


class Policy(Protocol):
    """Anything that turns an observation into an action chunk (flow, regression, diffusion)."""

    horizon: int  # H, steps per chunk
    fps: float  # control rate the chunk is sampled at

    def predict(
        self,
        obs: Observation,
        *,
        prefix: np.ndarray | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """Return an (H, D) float32 chunk of joint targets for steps t+1/fps ... t+H/fps.

        ``prefix`` (K, D), K < H: actions already committed for the first K steps; the
        policy must return a chunk whose first K steps equal (or closely follow) them.
        """
        ...
