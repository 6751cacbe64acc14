"""ChunkDataset: training samples from a LeRobot v3 dataset written by `flow-policy convert`.

Sample i is the observation at frame i with the action chunk a[i : i + H]; steps past the
episode's end repeat its last action and are flagged in ``action_is_pad`` (the loss
ignores them). Videos are decoded once, at construction, into uint8 arrays in memory,
so an epoch costs no decoding (96x96 RGB: 27 KB a frame, 100 k frames ~ 2.8 GB).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from flow_policy_node.data import lerobot
from flow_policy_node.observation import (
    ACTION,
    ACTION_IS_PAD,
    GOAL,
    IMAGE_PREFIX,
    STATE,
    TASK_INDEX,
)


class DatasetError(ValueError):
    """The dataset directory is missing pieces or inconsistent; the text says which."""


def decode_video(path: Path) -> np.ndarray:
    """(N, h, w, 3) uint8 frames of an mp4."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


class ChunkDataset(Dataset):
    def __init__(self, root: str | Path, horizon: int = 16, cameras: tuple[str, ...] | None = None) -> None:
        """cameras: the ones to load (None: all); unused videos are not decoded at all."""
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise DatasetError(
                f"{self.root} is not a dataset: {info_path} is missing (run `flow-policy convert`)"
            )
        self.meta = json.loads(info_path.read_text())
        if self.meta.get("codebase_version") != lerobot.CODEBASE_VERSION:
            raise DatasetError(
                f"{self.root}: codebase_version {self.meta.get('codebase_version')}, expected v3.0"
            )
        self.horizon = horizon
        self.fps = float(self.meta["fps"])
        features = self.meta["features"]
        self.joint_names = list(features[STATE]["names"])
        self.image_keys = [k for k, f in features.items() if f["dtype"] == "video"]
        if cameras is not None:
            unknown = [c for c in cameras if f"{IMAGE_PREFIX}{c}" not in self.image_keys]
            if unknown:
                raise DatasetError(f"cameras {unknown} are not in {self.root} (it has {self.image_keys})")
            self.image_keys = [f"{IMAGE_PREFIX}{c}" for c in cameras]
        self.cameras = tuple(k.removeprefix(IMAGE_PREFIX) for k in self.image_keys)
        videos = [f for f in features.values() if f["dtype"] == "video"]
        self.image_size = tuple(videos[0]["shape"][:2]) if videos else (0, 0)
        self.stats = json.loads((self.root / "meta" / "stats.json").read_text())
        tasks = pq.read_table(self.root / "meta" / "tasks.parquet").to_pydict()
        self.tasks = [t for _, t in sorted(zip(tasks["task_index"], tasks["task"], strict=True))]
        table = pq.read_table(self.root / lerobot.data_file())
        self.state = np.array(table[STATE].combine_chunks().flatten(), np.float32).reshape(len(table), -1)
        self.action = np.array(table[ACTION].combine_chunks().flatten(), np.float32).reshape(len(table), -1)
        self.goal = np.array(table[GOAL].combine_chunks().flatten(), np.float32).reshape(len(table), -1)
        self.episode = table["episode_index"].to_numpy()
        self.task_index = table["task_index"].to_numpy()
        episodes = pq.read_table(self.root / lerobot.EPISODES_PATH).to_pydict()
        self.episode_end = np.zeros(len(table), np.int64)
        for start, end in zip(episodes["dataset_from_index"], episodes["dataset_to_index"], strict=True):
            self.episode_end[start:end] = end
        self.frames = {}
        for key in self.image_keys:
            frames = decode_video(self.root / lerobot.video_file(key))
            if len(frames) != len(table):
                raise DatasetError(f"{key}: {len(frames)} video frames for {len(table)} data rows")
            self.frames[key] = frames

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
