"""ExpertDemos: scripted-expert episodes in memory, as a training dataset.

An EpisodeDataset as ChunkDataset is (``meta``, ``episode``; sample i is the observation
at frame i with the actions a[i : i + H]), without ROS, bags or files: for benchmarks and
tests that need a policy trained on the simulator's tasks in seconds to minutes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tqdm import tqdm

from flow_policy_node.data.episodes import EpisodeDataset
from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.observation import ACTION, FPS, STATE, image_key
from flow_policy_node.sim.env import ArmEnv, SimConfig
from flow_policy_node.sim.expert import run_expert_episode
from flow_policy_node.tasks import get_task
from flow_policy_node.train.synthetic import stats_of


class ExpertDemos(EpisodeDataset):
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
        cameras = tuple(cameras)
        # The caller's scene and its randomisation, with only the cameras to render set here.
        env = ArmEnv(replace(sim, cameras=cameras, render=bool(cameras)))
        joint_names = tuple(env.arm.joint_names)
        states, actions, goals, task_ids, episodes = [], [], [], [], []
        n_episodes = 0
        frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
        for k, task in enumerate(tasks):
            for seed in tqdm(
                range(first_seed, first_seed + per_task), desc=f"expert demos {task}", disable=not progress
            ):
                ep = run_expert_episode(env, task, seed, cameras=cameras)
                if not ep.success:
                    continue
                n = len(ep.states)
                episodes += [n_episodes] * n
                n_episodes += 1
                states += list(ep.states)
                actions += list(ep.actions)
                goals += [env.goal] * n
                task_ids += [k] * n
                for cam in cameras:
                    frames[cam].append(ep.images[cam])
        env.close()
        state, action = np.array(states, np.float32), np.array(actions, np.float32)
        meta = DatasetMeta(
            joint_names=joint_names,
            cameras=cameras,
            image_size=sim.image_size if cameras else (0, 0),
            fps=float(FPS),
            tasks=tuple(get_task(t).command for t in tasks),
            stats={ACTION: stats_of(action), STATE: stats_of(state)},
        )
        super().__init__(
            meta,
            horizon,
            state=state,
            action=action,
            goal=np.array(goals, np.float32),
            task_index=np.array(task_ids),
            episode=np.array(episodes),
            frames={image_key(c): np.concatenate(f) for c, f in frames.items()},
        )
