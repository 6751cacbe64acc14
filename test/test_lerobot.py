"""Issue 15: LeRobot both ways.

Our exported datasets are checked by a reader that uses pyarrow and PyAV alone
(lerobot_layout.check_layout), and a dataset written the way lerobot-record writes it
(lerobot_layout.write_lerobot_record_dataset) trains through `flow-policy train` and
drives the policy node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bagfactory import JOINTS, image_at, write_episode
from lerobot_layout import (
    CAMERA,
    MOTORS,
    check_layout,
    record_frame,
    record_state,
    write_lerobot_record_dataset,
)

from flow_policy_node.data.convert import ConvertConfig, convert
from flow_policy_node.data.dataset import ChunkDataset, DatasetError, FeatureMap

REPO = Path(__file__).resolve().parent.parent
SECONDS = [2.0, 3.0, 2.5]
TASKS = ["pick up the red cube", "reach the point", "pick up the red cube"]


def expected_frames(n: int) -> np.ndarray:
    """The n frames the converter takes at its 10 Hz ticks from bagfactory's 30 Hz camera
    (the latest at or before each tick; computed as bagfactory does, from t0 = 100 s)."""
    t0 = 100.0
    return np.stack([image_at((t0 + np.floor(k * 3 + 1e-6) / 30) - t0) for k in range(n)])


@pytest.mark.parametrize("file_mb", [None, 1e-6], ids=["one-file", "file-per-episode"])
def test_exported_dataset_follows_lerobot_v3_layout(tmp_path: Path, file_mb: float | None) -> None:
    for i, (s, task) in enumerate(zip(SECONDS, TASKS, strict=True)):
        write_episode(tmp_path / "bags" / f"ep{i}", seconds=s, task=task)
    cfg = ConvertConfig(cameras={"front": "/camera/front/image_raw"})
    if file_mb:
        cfg.data_files_size_in_mb = cfg.video_files_size_in_mb = file_mb
    reports = convert([tmp_path / "bags"], tmp_path / "ds", cfg, progress=False)
    assert all(not r.skipped for r in reports)
    read = check_layout(tmp_path / "ds")
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["fps"] == 10 and info["total_tasks"] == 2
    key = "observation.images.front"
    episodes = sorted(read)
    # Files take episodes until they are full: here all in one, or one each.
    n_files = 3 if file_mb else 1
    assert len(list((tmp_path / "ds/videos" / key / "chunk-000").glob("*.mp4"))) == n_files
    assert len(list((tmp_path / "ds/data/chunk-000").glob("*.parquet"))) == n_files

    # Image stats over every frame (exact, not sampled); count is frames, not pixels.
    frames = [expected_frames(r.frames) for r in reports]
    stats = json.loads((tmp_path / "ds/meta/stats.json").read_text())
    every = np.concatenate(frames).reshape(-1, 3).astype(np.float64) / 255.0
    np.testing.assert_allclose(np.ravel(stats[key]["mean"]), every.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.ravel(stats[key]["std"]), every.std(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.ravel(stats[key]["q50"]), np.quantile(every, 0.5, axis=0), atol=1e-12)
    np.testing.assert_allclose(np.ravel(stats[key]["q01"]), np.quantile(every, 0.01, axis=0), atol=1e-12)
    # The decoded video is what was recorded (H.264 4:4:4 at CRF 10).
    for e in episodes:
        assert np.abs(read[e]["frames"][key].astype(int) - frames[e].astype(int)).mean() < 2.0
    # Our reader agrees with the independent one, episode by episode.
    ds = ChunkDataset(tmp_path / "ds", horizon=4)
    start = 0
    for e in episodes:
        n = len(read[e]["rows"])
        np.testing.assert_array_equal(ds.frames[key][start : start + n], read[e]["frames"][key])
        state = np.array(read[e]["rows"]["observation.state"].to_pylist(), np.float32)
        np.testing.assert_array_equal(ds.state[start : start + n], state)
        start += n
    assert ds.meta.tasks == ("pick up the red cube", "reach the point")


def test_dataset_without_cameras_has_no_video_path(tmp_path: Path) -> None:
    write_episode(tmp_path / "bags" / "ep0")
    convert([tmp_path / "bags"], tmp_path / "ds", ConvertConfig(cameras={}), progress=False)
    check_layout(tmp_path / "ds")
    assert json.loads((tmp_path / "ds/meta/info.json").read_text())["video_path"] is None
    assert ChunkDataset(tmp_path / "ds", horizon=2).meta.cameras == ()


def test_fps_must_be_an_integer(tmp_path: Path) -> None:
    from flow_policy_node.data.convert import ConversionError

    write_episode(tmp_path / "bags" / "ep0")
    with pytest.raises(ConversionError, match="integer"):
        convert([tmp_path / "bags"], tmp_path / "ds", ConvertConfig(fps=7.5), progress=False)


def test_writer_shows_the_dataset_only_once_finalized(tmp_path: Path) -> None:
    from flow_policy_node.data.lerobot import LeRobotWriter
    from flow_policy_node.observation import ACTION, STATE

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        LeRobotWriter.create(taken, {STATE: JOINTS}, [])
    vectors = {STATE: np.arange(35, dtype=np.float32).reshape(5, 7), ACTION: np.ones((5, 7), np.float32)}
    features = {STATE: JOINTS, ACTION: JOINTS}

    root = tmp_path / "ds"
    writer = LeRobotWriter.create(root, features, [])
    writer.add_episode(vectors, {}, "reach the point")
    assert not root.exists()  # nothing a reader could mistake for a dataset yet
    writer.finalize()
    assert not (tmp_path / "ds.partial").exists()
    ds = ChunkDataset(root, horizon=2, features=FeatureMap(goal=None))
    np.testing.assert_array_equal(ds.state, vectors[STATE])
    assert ds.meta.tasks == ("reach the point",)

    dropped = LeRobotWriter.create(tmp_path / "dropped", features, [])
    dropped.add_episode(vectors, {}, "reach the point")
    dropped.discard()
    assert not (tmp_path / "dropped").exists() and not (tmp_path / "dropped.partial").exists()


# --- a dataset from lerobot-record ----------------------------------------------------------------

LENGTHS = [12, 15, 10]
RECORD_TASKS = ["pick up the red cube", "reach the point", "pick up the red cube"]
MAPPING = [
    "--camera",
    f"front={CAMERA}",
    "--goal-feature",
    "none",
    "--joint-names",
    ",".join(JOINTS),
]


@pytest.fixture(scope="module")
def record_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lerobot") / "so101_pick"
    write_lerobot_record_dataset(root, LENGTHS, RECORD_TASKS, fps=30, size=32, per_file=2)
    return root


def test_our_layout_checker_accepts_what_lerobot_record_writes(record_dataset: Path) -> None:
    read = check_layout(record_dataset)  # the checker is not tuned to our writer
    assert sorted(read) == [0, 1, 2]


def test_features_are_mapped_by_config_and_a_missing_one_is_named(record_dataset: Path) -> None:
    with pytest.raises(DatasetError) as err:
        ChunkDataset(record_dataset, horizon=4)
    text = str(err.value)
    assert "goal 'observation.goal'" in text and CAMERA in text and "observation.state" in text
    with pytest.raises(DatasetError, match=r"camera front 'observation.images.front'"):
        ChunkDataset(
            record_dataset, features=FeatureMap(goal=None, cameras={"front": "observation.images.front"})
        )
    with pytest.raises(DatasetError, match=r"state 'obs.state'"):
        ChunkDataset(record_dataset, features=FeatureMap(state="obs.state", goal=None))

    fmap = FeatureMap(goal=None, cameras={"front": CAMERA}, joint_names=JOINTS)
    ds = ChunkDataset(record_dataset, horizon=4, features=fmap)
    assert ds.meta.cameras == ("front",) and ds.meta.joint_names == tuple(JOINTS) and ds.meta.fps == 30
    assert ds.meta.tasks == ("pick up the red cube", "reach the point")
    assert len(ds) == sum(LENGTHS)
    # Episode 2 lives in the second data file and the second video file, from its start.
    e2 = slice(LENGTHS[0] + LENGTHS[1], None)
    np.testing.assert_allclose(ds.state[e2], np.stack([record_state(2, k) for k in range(LENGTHS[2])]))
    np.testing.assert_allclose(ds.action[e2][:-1], ds.state[e2][1:], atol=1e-7)
    # Episode 1 is the second in its mp4: its frames come from from_timestamp on.
    e1 = slice(LENGTHS[0], LENGTHS[0] + LENGTHS[1])
    want = np.stack([record_frame(1, k, 32) for k in range(LENGTHS[1])]).astype(int)
    assert np.abs(ds.frames["observation.images.front"][e1].astype(int) - want).mean() < 3.0
    assert (ds.goal == 0).all()
    assert ds.task_index[e1].tolist() == [1] * LENGTHS[1]
    item = ds[LENGTHS[0] - 2]  # the chunk stops at the episode's end
    assert item["action_is_pad"].tolist() == [False, False, True, True]
    # Without joint names, the dataset's own (motor) names are used.
    assert ChunkDataset(record_dataset, features=FeatureMap(goal=None)).meta.joint_names == tuple(MOTORS)


def flow_policy(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "flow_policy_node.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


TINY = """
steps: 6
batch_size: 16
warmup_steps: 2
threads: 1
policy:
  horizon: 4
  steps: 4
  encoder: {token_dim: 16, image: {width: 8, out_dim: 16, blocks: [1, 1]}}
  velocity: {kind: mlp, hidden: 32, depth: 2}
"""


@pytest.fixture(scope="module")
def record_checkpoint(record_dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "so101"
    config = out.parent / "tiny.yaml"
    config.write_text(TINY)
    done = flow_policy("train", str(record_dataset), "--out", str(out), "--config", str(config), *MAPPING)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_train_without_mapping_names_the_missing_feature(record_dataset: Path, tmp_path: Path) -> None:
    done = flow_policy("train", str(record_dataset), "--out", str(tmp_path / "c"), "--steps", "1")
    assert done.returncode == 1
    assert "missing features: goal 'observation.goal'" in done.stderr and "--goal-feature" in done.stderr


def test_lerobot_record_dataset_trains_and_the_checkpoint_predicts(record_checkpoint: Path) -> None:
    from flow_policy_node.control.robot_check import load_for_robot
    from flow_policy_node.observation import Observation

    meta = json.loads((record_checkpoint / "metadata.json").read_text())
    assert meta["joint_names"] == JOINTS and meta["fps"] == 30.0 and meta["image_size"] == [32, 32]
    assert meta["train_config"]["features"]["cameras"] == {"front": CAMERA}
    policy, _ = load_for_robot(str(record_checkpoint), JOINTS, ["front"])
    chunk = policy.predict(
        Observation(record_state(0, 0), {"front": record_frame(0, 0, 32)}, RECORD_TASKS[0]), seed=0
    )
    assert chunk.shape == (4, 7) and np.isfinite(chunk).all()


def test_lerobot_checkpoint_drives_the_policy_node(
    rclpy_context, record_checkpoint: Path, tmp_path: Path
) -> None:
    from rosutil import node_process
    from test_policy_node import Probe, params_file

    probe = Probe(rclpy_context)  # joint states by name and a 32x32 front camera
    try:
        with node_process(
            "policy_node", "--ros-args", "--params-file", params_file(tmp_path, record_checkpoint)
        ) as proc:
            probe.wait_status(lambda m: m.state == "idle", 60)
            probe.publish_command(RECORD_TASKS[0])
            msg = probe.wait_chunk(30)
            assert list(msg.joint_names) == JOINTS and len(msg.points) >= 2
            assert all(np.isfinite(p.positions).all() for p in msg.points)
        assert proc.returncode == 0, proc.stdout.read()
    finally:
        probe.close()
