"""DatasetMeta: what training needs to know about a dataset besides its samples.

Every dataset that ``train()`` takes exposes one as ``.meta`` (as LeRobotDataset exposes
its LeRobotDatasetMetadata): the policy's input and output sizes, its task vocabulary,
its frame rate and its normalisation all come from here, and the checkpoint records them.
"""

from __future__ import annotations

from dataclasses import dataclass

from flow_policy_node.observation import ACTION, STATE


@dataclass(frozen=True)
class DatasetMeta:
    joint_names: tuple[str, ...]  # the state / action elements, in order
    cameras: tuple[str, ...]  # camera names; a sample holds observation.images.<name>
    image_size: tuple[int, int]  # (h, w) of every camera's frames; (0, 0) without cameras
    fps: float  # frames per second, so also chunk steps per second
    tasks: tuple[str, ...]  # task strings in task_index order
    stats: dict[str, dict[str, list[float]]]  # feature -> LeRobot stats (mean, std, min, max, q01 ...)

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        missing = [k for k in (STATE, ACTION) if k not in self.stats]
        if missing:
            raise ValueError(f"no stats for {missing}: the policy normalises state and action with them")
