"""EpisodeDataset: whole episodes, sampled as (observation, action chunk) pairs.

Sample i is the observation at frame i with the action chunk a[i : i + H]; steps past the
episode's end repeat its last action and are flagged in ``action_is_pad`` (the loss
ignores them). Datasets that hold episodes frame by frame (ChunkDataset, ExpertDemos)
fill one; this is the only place that cuts chunks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from flow_policy_node.data.frames import FrameCache
from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.observation import ACTION, ACTION_IS_PAD, GOAL, STATE, TASK_INDEX


def episode_ends(episode: np.ndarray) -> np.ndarray:
    """For each frame, the index one past its episode's last frame; episodes must be contiguous."""
    episode = np.asarray(episode)
    if not len(episode):
        return np.zeros(0, np.int64)
    bounds = np.flatnonzero(np.diff(episode)) + 1
    if len(bounds) + 1 != len(np.unique(episode)):
        raise ValueError("each episode's frames must be contiguous and in order")
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(episode)]])
    return np.repeat(ends, ends - starts).astype(np.int64)


class EpisodeDataset(Dataset):
    """n frames of whole episodes, in episode order.

    state, action: (n, D); goal: (n, 3); task_index, episode: (n,), in memory; frames: image
    key -> (n, h, w, 3) uint8, an array or a :class:`~flow_policy_node.data.frames.FrameCache`
    on disk (frame i is ``frames[i]`` either way).
    """

    def __init__(
        self,
        meta: DatasetMeta,
        horizon: int,
        state: np.ndarray,
        action: np.ndarray,
        goal: np.ndarray,
        task_index: np.ndarray,
        episode: np.ndarray,
        frames: dict[str, np.ndarray | FrameCache],
    ) -> None:
        self.meta, self.horizon = meta, horizon
        self.state = np.asarray(state, np.float32)
        self.action = np.asarray(action, np.float32)
        self.goal = np.asarray(goal, np.float32)
        self.task_index = np.asarray(task_index)
        self.episode = np.asarray(episode)
        self.episode_end = episode_ends(self.episode)
        self.frames = frames

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        end = self.episode_end[i]
        idx = np.arange(i, i + self.horizon)
        pad = idx >= end
        idx = np.minimum(idx, end - 1)
        item = {
            STATE: torch.from_numpy(self.state[i]),
            GOAL: torch.from_numpy(self.goal[i]),
            TASK_INDEX: torch.tensor(int(self.task_index[i])),
            ACTION: torch.from_numpy(self.action[idx]),
            ACTION_IS_PAD: torch.from_numpy(pad),
        }
        for key, frames in self.frames.items():
            item[key] = torch.from_numpy(frames[i]).permute(2, 0, 1).float().div_(255.0)
        return item
