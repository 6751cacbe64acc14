"""Small in-memory datasets of ready-made chunks (each with a DatasetMeta), for tests and benchmarks."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.observation import ACTION, ACTION_IS_PAD, GOAL, STATE, TASK_INDEX, image_key

JOINTS = ["joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6", "gripper_finger_joint"]


def stats_of(x: np.ndarray) -> dict[str, list[float]]:
    x = x.reshape(-1, x.shape[-1])
    return {
        "mean": x.mean(0).tolist(),
        "std": x.std(0).tolist(),
        "min": x.min(0).tolist(),
        "max": x.max(0).tolist(),
        "q01": np.quantile(x, 0.01, axis=0).tolist(),
        "q99": np.quantile(x, 0.99, axis=0).tolist(),
    }


class BimodalDataset(Dataset):
    """Same observation, two equally likely chunks: round an obstacle on the left or right.

    Joint 0 sweeps from 0 to 1 over the chunk; joint 1 bulges to +amp (left) or -amp
    (right) in the middle. The mean of the two modes (joint 1 = 0) hits the obstacle.
    """

    def __init__(
        self, n: int = 512, horizon: int = 16, amp: float = 1.0, cameras: tuple[str, ...] = ()
    ) -> None:
        self.horizon = horizon
        rng = np.random.default_rng(0)
        s = np.linspace(0, 1, horizon)
        self.side = rng.integers(0, 2, n) * 2 - 1
        self.actions = np.zeros((n, horizon, 7), np.float32)
        self.actions[:, :, 0] = s
        self.actions[:, :, 1] = self.side[:, None] * amp * np.sin(np.pi * s)
        # Demonstrator jitter on the moving joints; the others stay still.
        self.actions[:, :, :2] += rng.normal(0, 0.01, (n, horizon, 2)).astype(np.float32)
        stats = {
            ACTION: stats_of(self.actions),
            STATE: stats_of(np.array([[0.0] * 7, [1.0] * 7], np.float32)),
        }
        self.meta = DatasetMeta(tuple(JOINTS), tuple(cameras), (32, 32), 10.0, ("go round",), stats)

    @staticmethod
    def mode(amp: float = 1.0, horizon: int = 16, side: int = 1) -> np.ndarray:
        s = np.linspace(0, 1, horizon)
        out = np.zeros((horizon, 7), np.float32)
        out[:, 0], out[:, 1] = s, side * amp * np.sin(np.pi * s)
        return out

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {
            STATE: torch.zeros(7),
            GOAL: torch.zeros(3),
            TASK_INDEX: torch.tensor(0),
            ACTION: torch.from_numpy(self.actions[i]),
            ACTION_IS_PAD: torch.zeros(self.horizon, dtype=torch.bool),
        }
        for cam in self.meta.cameras:
            item[image_key(cam)] = torch.full((3, *self.meta.image_size), 0.5)
        return item


class ReachDataset(Dataset):
    """Images and state that determine the chunk: a bright dot's column sets the target."""

    def __init__(self, n: int = 256, horizon: int = 8, size: int = 32, cameras=("front",)) -> None:
        self.horizon = horizon
        rng = np.random.default_rng(1)
        self.target = rng.uniform(-1, 1, n).astype(np.float32)
        self.state = rng.uniform(-0.5, 0.5, (n, 7)).astype(np.float32)
        self.task = rng.integers(0, 2, n)
        s = np.linspace(0, 1, horizon, dtype=np.float32)
        self.actions = self.state[:, None, :] + np.zeros((n, horizon, 7), np.float32)
        self.actions[:, :, 0] += s * (self.target[:, None] + self.task[:, None])
        self.images = np.zeros((n, 3, size, size), np.float32)
        cols = ((self.target + 1) / 2 * (size - 1)).round().astype(int)
        self.images[np.arange(n), :, size // 2, cols] = 1.0
        stats = {ACTION: stats_of(self.actions), STATE: stats_of(self.state)}
        self.meta = DatasetMeta(tuple(JOINTS), tuple(cameras), (size, size), 10.0, ("reach", "wave"), stats)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {
            STATE: torch.from_numpy(self.state[i]),
            GOAL: torch.zeros(3),
            TASK_INDEX: torch.tensor(int(self.task[i])),
            ACTION: torch.from_numpy(self.actions[i]),
            ACTION_IS_PAD: torch.zeros(self.horizon, dtype=torch.bool),
        }
        for cam in self.meta.cameras:
            item[image_key(cam)] = torch.from_numpy(self.images[i])
        return item
