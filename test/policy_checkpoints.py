"""Tiny checkpoints trained on synthetic data, for the policy node's tests and benchmark.

StepDataset: every chunk is a function of the state, the task and the front image, with
joint-specific offsets, so that a node that reordered joints by index (not by name), lost
the task, or ignored the image would publish different chunks.
SweepDataset: two equally likely modes (joint 1 sweeping left or right): chunks sampled
independently may switch mode at a seam, which is what real-time chunking must prevent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.models.encoders import ImageEncoderConfig, ObservationEncoderConfig
from flow_policy_node.models.policy import PolicyConfig
from flow_policy_node.models.velocity import VelocityNetConfig
from flow_policy_node.observation import ACTION, ACTION_IS_PAD, GOAL, STATE, TASK_INDEX, image_key
from flow_policy_node.train.loop import TrainConfig, train
from flow_policy_node.train.synthetic import JOINTS, stats_of

TASKS = ["pick up the red cube", "reach the point"]
SIZE = 32
STEP = np.array([0.02, -0.015, 0.01, 0.0, 0.0, 0.0, 0.001], np.float32)  # per step, task 0


def bright_image(level: float) -> np.ndarray:
    """(SIZE, SIZE, 3) uint8: the front image's brightness tells joint 4 where to go."""
    return np.full((SIZE, SIZE, 3), round(level * 255), np.uint8)


def step_chunk(state: np.ndarray, task: int, level: float, horizon: int) -> np.ndarray:
    """(H, D) the chunk StepDataset teaches: ramps from the state, sign by task, joint 4 by image."""
    k = np.arange(1, horizon + 1, dtype=np.float32)[:, None]
    sign = 1.0 if task == 0 else -1.0
    out = state[None] + sign * k * STEP[None]
    out[:, 3] = state[3] + k[:, 0] * 0.02 * (level - 0.5)
    return out


class StepDataset(Dataset):
    def __init__(self, n: int = 512, horizon: int = 8) -> None:
        self.horizon = horizon
        rng = np.random.default_rng(0)
        self.state = rng.uniform(-0.5, 0.5, (n, 7)).astype(np.float32)
        self.state[:, 6] = rng.uniform(0.0, 0.03, n)
        self.task = rng.integers(0, 2, n)
        self.level = rng.choice([0.0, 1.0], n)
        self.actions = np.stack(
            [
                step_chunk(s, t, lv, horizon)
                for s, t, lv in zip(self.state, self.task, self.level, strict=True)
            ]
        )
        stats = {ACTION: stats_of(self.actions), STATE: stats_of(self.state)}
        self.meta = DatasetMeta(tuple(JOINTS), ("front",), (SIZE, SIZE), 10.0, tuple(TASKS), stats)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            STATE: torch.from_numpy(self.state[i]),
            GOAL: torch.zeros(3),
            TASK_INDEX: torch.tensor(int(self.task[i])),
            ACTION: torch.from_numpy(self.actions[i]),
            ACTION_IS_PAD: torch.zeros(self.horizon, dtype=torch.bool),
            image_key("front"): torch.full((3, SIZE, SIZE), float(self.level[i])),
        }


class SweepDataset(Dataset):
    """Joint 1 sweeps at 0.6 rad/s, left or right with equal probability (bouncing off +-0.4).

    Every state in [-0.6, 0.6] is seen in training, so a rollout stays in distribution.
    The mean of the two modes stands still, so a policy that averages them is visible.
    """

    speed = 0.6  # rad/s

    def __init__(self, n: int = 2048, horizon: int = 16) -> None:
        self.horizon, fps = horizon, 10.0
        rng = np.random.default_rng(2)
        self.state = np.zeros((n, 7), np.float32)
        self.state[:, 0] = rng.uniform(-0.6, 0.6, n)
        direction = rng.choice([-1.0, 1.0], n)
        direction[self.state[:, 0] > 0.4] = -1.0
        direction[self.state[:, 0] < -0.4] = 1.0
        k = np.arange(1, horizon + 1)[None]
        self.actions = np.repeat(self.state[:, None, :], horizon, axis=1)
        self.actions[:, :, 0] += direction[:, None] * self.speed * k / fps
        stats = {ACTION: stats_of(self.actions), STATE: stats_of(self.state)}
        # No cameras: a state-only policy trains fast.
        self.meta = DatasetMeta(tuple(JOINTS), (), (SIZE, SIZE), fps, tuple(TASKS), stats)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            STATE: torch.from_numpy(self.state[i]),
            GOAL: torch.zeros(3),
            TASK_INDEX: torch.tensor(0),
            ACTION: torch.from_numpy(self.actions[i]),
            ACTION_IS_PAD: torch.zeros(self.horizon, dtype=torch.bool),
        }


def tiny_config(steps: int, horizon: int, hidden: int = 128, cameras=("front",)) -> TrainConfig:
    policy = PolicyConfig(
        kind="flow",
        horizon=horizon,
        steps=10,
        encoder=ObservationEncoderConfig(
            cameras=cameras, token_dim=32, image=ImageEncoderConfig(width=8, out_dim=32, blocks=(1, 1))
        ),
        velocity=VelocityNetConfig(kind="mlp", hidden=hidden, depth=3),
    )
    return TrainConfig(
        policy=policy,
        steps=steps,
        batch_size=128,
        lr=2e-3,
        warmup_steps=20,
        ema_decay=0.9,
        log_every=50,
        threads=1,
    )


def train_step_checkpoint(out: Path, steps: int = 200) -> Path:
    torch.manual_seed(0)
    train(tiny_config(steps, horizon=8), StepDataset(), out, dataset_name="synthetic-step")
    return out


def train_sweep_checkpoint(out: Path, steps: int = 600) -> Path:
    cfg = tiny_config(steps, horizon=16, hidden=256, cameras=())
    train(cfg, SweepDataset(), out, dataset_name="synthetic-sweep")
    return out


def train_pick_checkpoint(out: Path, demos: int = 40, steps: int = 2500) -> Path:
    """A state+goal flow policy for pick_red (measured: 2500 steps, 30 demos -> 9/10 unseen
    layouts ROS-free; 65 s on 2 idle cores)."""
    torch.manual_seed(0)
    cfg = TrainConfig(
        policy=PolicyConfig(kind="flow", horizon=16),
        steps=steps,
        batch_size=64,
        lr=1e-3,
        warmup_steps=50,
        seed=0,
        device="cpu",
        threads=1,
        log_every=500,
    )
    from flow_policy_node.sim.demos import ExpertDemos

    data = ExpertDemos(("pick_red",), demos, 16, progress=False)
    train(cfg, data, out, dataset_name="expert-pick-red")
    return out
