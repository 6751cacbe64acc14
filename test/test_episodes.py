"""The dataset contract train() reads (DatasetMeta) and the one chunk windowing (EpisodeDataset)."""

from __future__ import annotations

import numpy as np
import pytest

from flow_policy_node.data.episodes import EpisodeDataset
from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.observation import ACTION, ACTION_IS_PAD, STATE, TASK_INDEX, image_key
from flow_policy_node.train.synthetic import stats_of


def meta(cameras: tuple[str, ...] = ()) -> DatasetMeta:
    stats = {STATE: stats_of(np.zeros((2, 2))), ACTION: stats_of(np.zeros((2, 2)))}
    return DatasetMeta(("a", "b"), cameras, (4, 4) if cameras else (0, 0), 10.0, ("t0", "t1"), stats)


def episodes(episode: list[int], horizon: int = 3) -> EpisodeDataset:
    n = len(episode)
    action = np.arange(n, dtype=np.float32)[:, None].repeat(2, axis=1)
    frames = {
        image_key("front"): np.arange(n, dtype=np.uint8)[:, None, None, None]
        .repeat(4, 1)
        .repeat(4, 2)
        .repeat(3, 3)
    }
    return EpisodeDataset(
        meta(("front",)),
        horizon,
        state=-action,
        action=action,
        goal=np.zeros((n, 3)),
        task_index=np.array(episode) % 2,
        episode=np.array(episode),
        frames=frames,
    )


def test_chunks_stop_at_the_episode_end_and_the_rest_is_padding() -> None:
    ds = episodes([0, 0, 0, 1, 1])
    assert len(ds) == 5
    item = ds[1]
    assert item[ACTION][:, 0].tolist() == [1, 2, 2] and item[ACTION_IS_PAD].tolist() == [False, False, True]
    item = ds[3]  # the next episode starts its own chunks
    assert item[ACTION][:, 0].tolist() == [3, 4, 4] and item[ACTION_IS_PAD].tolist() == [False, False, True]
    assert item[STATE].tolist() == [-3.0, -3.0] and int(item[TASK_INDEX]) == 1
    assert item[image_key("front")].shape == (3, 4, 4) and float(
        item[image_key("front")].max()
    ) == pytest.approx(3 / 255)


def test_an_episode_split_in_two_runs_is_refused() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        episodes([0, 0, 1, 0])


def test_meta_needs_state_and_action_stats_and_a_frame_rate() -> None:
    with pytest.raises(ValueError, match="stats"):
        DatasetMeta(("a",), (), (0, 0), 10.0, ("t",), {STATE: {}})
    with pytest.raises(ValueError, match="fps"):
        DatasetMeta(("a",), (), (0, 0), 0.0, ("t",), {STATE: {}, ACTION: {}})
