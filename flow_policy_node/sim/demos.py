"""ExpertDemos: scripted-expert episodes in memory, as a training dataset.

The same contract as ChunkDataset (``stats``, ``tasks``, ``joint_names``, ``cameras``,
``fps``, ``image_size``, ``episode``; sample i is the observation at frame i with the
actions a[i : i + H]), without ROS, bags or files: for benchmarks and tests that need a
policy trained on the simulator's tasks in seconds to minutes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from flow_policy_node.observation import ACTION, ACTION_IS_PAD, FPS, GOAL, STATE, TASK_INDEX, image_key
from flow_policy_node.sim.env import ArmEnv, SimConfig
from flow_policy_node.sim.expert import run_expert_episode
from flow_policy_node.sim.tasks import get_task
from flow_policy_node.train.synthetic import stats_of


class ExpertDemos(Dataset):
    """Chunk windows over successful scripted-expert episodes (seeds first_seed.. per task).

    cameras: frames to render and keep (uint8 in memory, ~27 KB a 96x96 frame).
    The goal column holds each episode's goal point (for pick tasks the target cube's
    position): an input for tasks that take a goal, a label for ones that find it in images.
    """

    def __init__(
        self,
        tasks: tuple[str, ...],
        per_task: int,
        horizon: int,
        cameras: tuple[str, ...] = (),
        first_seed: int = 0,
        sim: SimConfig | None = None,
        progress: bool = True,
    ) -> None:
        sim = sim or SimConfig()
        self.horizon, self.fps, self.cameras = horizon, float(FPS), tuple(cameras)
        self.image_size = sim.image_size if cameras else (0, 0)
        env = ArmEnv(SimConfig(image_size=sim.image_size, cameras=self.cameras, render=bool(cameras)))
        self.joint_names = list(env.arm.joint_names)
        self.tasks = [get_task(t).command for t in tasks]
        states, actions, goals, task_ids, ends, episodes = [], [], [], [], [], []
        n_episodes = 0
        frames: dict[str, list[np.ndarray]] = {c: [] for c in self.cameras}
        for k, task in enumerate(tasks):
            for seed in tqdm(
                range(first_seed, first_seed + per_task), desc=f"expert demos {task}", disable=not progress
            ):
                ep = run_expert_episode(env, task, seed, cameras=self.cameras)
                if not ep.success:
                    continue
                n = len(ep.states)
                ends += [len(states) + n] * n
                episodes += [n_episodes] * n
                n_episodes += 1
                states += list(ep.states)
                actions += list(ep.actions)
                goals += [env.goal] * n
                task_ids += [k] * n
                for cam in self.cameras:
                    frames[cam].append(ep.images[cam])
        env.close()
        self.state = np.array(states, np.float32)
        self.action = np.array(actions, np.float32)
        self.goal = np.array(goals, np.float32)
        self.task_index = np.array(task_ids)
        self.end = np.array(ends)
        self.episode = np.array(episodes)
        self.frames = {c: np.concatenate(f) for c, f in frames.items()}
        self.stats = {ACTION: stats_of(self.action), STATE: stats_of(self.state)}

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        idx = np.arange(i, i + self.horizon)
        pad = idx >= self.end[i]
        idx = np.minimum(idx, self.end[i] - 1)
        item = {
            STATE: torch.from_numpy(self.state[i]),
            GOAL: torch.from_numpy(self.goal[i]),
            TASK_INDEX: torch.tensor(int(self.task_index[i])),
            ACTION: torch.from_numpy(self.action[idx]),
            ACTION_IS_PAD: torch.from_numpy(pad),
        }
        for cam, frames in self.frames.items():
            item[image_key(cam)] = torch.from_numpy(frames[i]).permute(2, 0, 1).float().div_(255.0)
        return item
