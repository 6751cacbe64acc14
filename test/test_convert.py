"""Issue 6: bags (as `ros2 bag record` writes them) -> LeRobot v3 datasets; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bagfactory import image_at, state_at, write_episode

from flow_policy_node.data.convert import ConversionError, ConvertConfig, convert
from flow_policy_node.data.dataset import ChunkDataset


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_values_at_grid_ticks_equal_what_was_recorded(tmp_path: Path, storage: str) -> None:
    write_episode(tmp_path / "bags" / "ep0", storage=storage)
    reports = convert([tmp_path / "bags"], tmp_path / "ds", progress=False)
    assert not reports[0].skipped and reports[0].frames == 30
    ds = ChunkDataset(tmp_path / "ds", horizon=4)
    ticks = np.arange(30) / 10.0
    np.testing.assert_allclose(ds.state, np.array([state_at(t) for t in ticks]), atol=1e-6)
    # The action at tick k is the command in force at t_k + 1/fps: the next target.
    np.testing.assert_allclose(ds.action[:-1], np.array([state_at(t + 0.1) for t in ticks[:-1]]), atol=1e-5)
    frames = ds.frames["observation.images.front"].astype(int)
    expected = np.array([image_at(np.floor(t * 30 + 1e-6) / 30) for t in ticks]).astype(int)
    assert np.abs(frames - expected).mean() < 2.0  # h264 4:4:4 at CRF 10
    info = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10.0
    stats = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    assert {"mean", "std", "min", "max", "q01", "q99"} <= set(stats["observation.state"])
    item = ds[28]
    assert item["action"].shape == (4, 7) and item["action_is_pad"].tolist() == [False, False, True, True]
    assert ds.meta.tasks == ("pick up the red cube",)


def bad(tmp_path: Path, name: str, **kwargs) -> Path:
    path = tmp_path / "bags" / name
    write_episode(path, **kwargs)
    return path


@pytest.mark.parametrize(
    ("kind", "kwargs", "reason"),
    [
        ("missing_topic", {"drop_topics": ("/camera/wrist/image_raw",)}, "missing topics"),
        ("renamed_joints", {"joints": ["j1", "j2", "j3", "j4", "j5", "j6", "g"]}, "joint names differ"),
        ("nan", {"nan_at": 1.5}, "non-finite joint positions"),
        ("out_of_order", {"shuffle_stamps": True}, "out-of-order timestamps"),
        ("empty", {"seconds": 0.0, "drop_topics": ("/flow_policy/command",)}, "empty episode"),
    ],
)
def test_bad_episodes_are_skipped_with_a_reason(tmp_path: Path, kind: str, kwargs: dict, reason: str) -> None:
    write_episode(tmp_path / "bags" / "good")
    bad(tmp_path, kind, **kwargs)
    reports = {Path(r.bag).name: r for r in convert([tmp_path / "bags"], tmp_path / "ds", progress=False)}
    assert not reports["good"].skipped
    assert reason in reports[kind].skipped, reports[kind].skipped
    assert json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["total_episodes"] == 1


def test_truncated_bag_is_skipped_and_nothing_converts_is_an_error(tmp_path: Path) -> None:
    path = bad(tmp_path, "cut")
    mcap = next(path.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(ConversionError, match=r"no episode could be converted.*cut"):
        convert([tmp_path / "bags"], tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()
    with pytest.raises(ConversionError, match="neither a rosbag2 directory"):
        convert([tmp_path / "nothing"], tmp_path / "ds2", progress=False)


def test_next_state_is_the_action_without_a_command_topic(tmp_path: Path) -> None:
    write_episode(tmp_path / "bags" / "ep", drop_topics=("/arm_controller/joint_trajectory",))
    convert([tmp_path / "bags"], tmp_path / "ds", ConvertConfig(action_topic=None), progress=False)
    ds = ChunkDataset(tmp_path / "ds", horizon=2)
    np.testing.assert_allclose(ds.action[:-1], ds.state[1:], atol=1e-6)
