"""Issue 15, datasets larger than RAM: frames decoded once into a cache on disk, read per sample.

Every check compares the cache with the in-memory decode of the same dataset (itself
checked against an independent reader in test_lerobot.py), frame for frame and batch for
batch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch.utils.data import DataLoader, RandomSampler

from flow_policy_node.data import lerobot
from flow_policy_node.data.dataset import ChunkDataset, FeatureMap
from flow_policy_node.data.frames import FrameCache, FrameCacheConfig
from flow_policy_node.models.policy import PolicyConfig
from flow_policy_node.observation import ACTION, GOAL, STATE, image_key
from flow_policy_node.train.loop import TrainConfig, train

JOINTS = [f"j{i}" for i in range(7)]
CAMERAS = [image_key("front"), image_key("wrist")]
LENGTHS = (7, 9, 5)
SIZE = (24, 32)
MEMORY = FrameCacheConfig(store="memory")


def scene(rng: np.random.Generator, n: int) -> np.ndarray:
    """n frames of a textured background with a square moving across it (compressible, distinct)."""
    background = rng.integers(0, 256, (SIZE[0] // 4, SIZE[1] // 4, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(background[None], 4, 1), 4, 2).repeat(n, 0)
    for k in range(n):
        frames[k, 8:16, 2 * k : 2 * k + 8] = (255, 40 * k % 256, 0)
    return frames


def write_dataset(root: Path, seed: int = 0, file_mb: float = lerobot.VIDEO_FILE_MB) -> None:
    """2 cameras, 3 episodes; ``file_mb`` tiny: one video file per episode."""
    rng = np.random.default_rng(seed)
    writer = lerobot.LeRobotWriter.create(
        root,
        {STATE: JOINTS, ACTION: JOINTS, GOAL: ["x", "y", "z"]},
        CAMERAS,
        lerobot.WriterConfig(video_files_size_in_mb=file_mb, data_files_size_in_mb=file_mb),
    )
    for n in LENGTHS:
        state = rng.normal(size=(n, 7)).astype(np.float32)
        vectors = {STATE: state, ACTION: state + 0.1, GOAL: np.ones((n, 3), np.float32)}
        writer.add_episode(vectors, {key: list(scene(rng, n)) for key in CAMERAS}, "pick up the red cube")
    writer.finalize()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    write_dataset(tmp_path / "ds", file_mb=1e-6)
    return tmp_path / "ds"


def on_disk(tmp_path: Path) -> FrameCacheConfig:
    return FrameCacheConfig(store="disk", cache_dir=str(tmp_path / "cache"))


def identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_cache_holds_exactly_the_decoded_frames_and_maps_none_of_them(dataset: Path, tmp_path: Path) -> None:
    in_ram = ChunkDataset(dataset, horizon=4, frames=MEMORY)
    streamed = ChunkDataset(dataset, horizon=4, frames=on_disk(tmp_path))
    assert len(streamed) == len(in_ram) == sum(LENGTHS)
    for key, frames in in_ram.frames.items():
        cache = streamed.frames[key]
        assert isinstance(frames, np.ndarray) and isinstance(cache, FrameCache)
        assert cache.path.parent.parent == tmp_path / "cache"
        np.testing.assert_array_equal(cache[0 : len(cache)], frames)
        np.testing.assert_array_equal(np.stack([cache[i] for i in range(len(cache))]), frames)
        np.testing.assert_array_equal(cache[-1], frames[-1])
        assert len(np.unique(frames.reshape(len(frames), -1), axis=0)) == len(
            frames
        )  # a wrong row would show
    for i in (0, 6, 7, len(in_ram) - 1):
        a, b = in_ram[i], streamed[i]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (i, k)
    # Read with pread, not through a mapping: a mapping's touched pages would count in RSS.
    maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    assert not [c.path for c in streamed.frames.values() if str(c.path) in maps]
    # The files are ordinary .npy files.
    for key, frames in in_ram.frames.items():
        np.testing.assert_array_equal(np.load(streamed.frames[key].path), frames)


def test_image_features_stream_from_the_parquet_in_any_row_order(tmp_path: Path) -> None:
    """LeRobot ``image`` features (PNG cells in the data parquet, lossless) decode exactly,
    in memory and into the cache, whatever order the rows are stored in."""
    root, key = tmp_path / "ds", image_key("front")
    writer = lerobot.LeRobotWriter.create(root, {STATE: JOINTS, ACTION: JOINTS}, [])
    rng = np.random.default_rng(3)
    frames = []
    for n in LENGTHS:
        state = rng.normal(size=(n, 7)).astype(np.float32)
        writer.add_episode({STATE: state, ACTION: state}, {}, "reach the point")
        frames.append(scene(rng, n))
    writer.finalize()
    frames = np.concatenate(frames)
    data = root / lerobot.data_file()
    table = pq.read_table(data)
    png = []
    for img in frames:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        png.append({"bytes": buf.getvalue(), "path": None})
    table = table.append_column(key, pa.array(png))
    pq.write_table(table.take(pa.array(np.arange(len(table))[::-1])), data)  # stored back to front
    info = json.loads((root / lerobot.INFO_PATH).read_text())
    info["features"][key] = {"dtype": "image", "shape": [*SIZE, 3], "names": ["height", "width", "channels"]}
    (root / lerobot.INFO_PATH).write_text(json.dumps(info))
    stats = json.loads((root / lerobot.STATS_PATH).read_text())
    stats[key] = lerobot.to_json(lerobot.vector_stats(frames.reshape(-1, 3) / 255))
    (root / lerobot.STATS_PATH).write_text(json.dumps(stats))

    for store in (MEMORY, on_disk(tmp_path)):
        ds = ChunkDataset(root, horizon=4, features=FeatureMap(goal=None), frames=store)
        np.testing.assert_array_equal(ds.frames[key][0 : len(ds)], frames)


def test_cache_is_reused_while_the_dataset_is_unchanged_and_rebuilt_when_it_changes(tmp_path: Path) -> None:
    root, store, key = tmp_path / "ds", on_disk(tmp_path), CAMERAS[0]
    write_dataset(root, seed=0)
    first = ChunkDataset(root, horizon=4, frames=store).frames[key]
    built, old = identity(first.path), first[0 : len(first)]
    assert identity(ChunkDataset(root, horizon=4, frames=store).frames[key].path) == built

    shutil.rmtree(root)
    write_dataset(root, seed=1)  # the same layout and lengths, other frames
    expected = ChunkDataset(root, horizon=4, frames=MEMORY).frames[key]
    changed = ChunkDataset(root, horizon=4, frames=store).frames[key]
    assert identity(changed.path) != built
    np.testing.assert_array_equal(changed[0 : len(changed)], expected)
    assert not np.array_equal(changed[0], old[0])  # the old frames are gone

    # A video touched (same bytes, new mtime) is a change too: the key is sizes and mtimes.
    rebuilt = identity(changed.path)
    video = next((root / "videos" / key).rglob("*.mp4"))
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert identity(ChunkDataset(root, horizon=4, frames=store).frames[key].path) != rebuilt
    # Only the camera whose video changed is rebuilt.
    other = ChunkDataset(root, horizon=4, frames=store).frames[CAMERAS[1]]
    assert identity(other.path) == identity(changed.path.with_name(f"{CAMERAS[1]}.npy"))


def flip_a_byte(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size - 100)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 5)


def break_header(path: Path) -> None:
    with open(path, "r+b") as f:
        f.write(b"\x00" * 8)


def lose_manifest(path: Path) -> None:  # a build killed before it finished
    path.with_suffix(".json").unlink()


@pytest.mark.parametrize("damage", [flip_a_byte, truncate, break_header, lose_manifest])
def test_a_damaged_cache_is_detected_and_rebuilt(dataset: Path, tmp_path: Path, damage) -> None:
    store, key = on_disk(tmp_path), CAMERAS[1]
    expected = ChunkDataset(dataset, horizon=4, frames=MEMORY).frames[key]
    path = ChunkDataset(dataset, horizon=4, frames=store).frames[key].path
    built = identity(path)
    damage(path)
    repaired = ChunkDataset(dataset, horizon=4, frames=store).frames[key]
    assert identity(repaired.path) != built
    np.testing.assert_array_equal(repaired[0 : len(repaired)], expected)
    assert identity(ChunkDataset(dataset, horizon=4, frames=store).frames[key].path) == identity(
        repaired.path
    )


def test_training_on_streamed_frames_sees_the_same_batches_as_in_ram(dataset: Path, tmp_path: Path) -> None:
    in_ram = ChunkDataset(dataset, horizon=4, frames=MEMORY)
    streamed = ChunkDataset(dataset, horizon=4, frames=on_disk(tmp_path))

    def batches(ds: ChunkDataset) -> list[dict[str, torch.Tensor]]:
        sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(7))
        return list(DataLoader(ds, batch_size=5, sampler=sampler, num_workers=2))  # frames read in workers

    for a, b in zip(batches(in_ram), batches(streamed), strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]), k

    cfg = TrainConfig(PolicyConfig(horizon=4), steps=6, batch_size=4, log_every=1, warmup_steps=2, seed=3)
    for name, ds in (("ram", in_ram), ("disk", streamed)):
        train(cfg, ds, tmp_path / name)
    losses = []
    for name in ("ram", "disk"):
        with open(tmp_path / name / "metrics.csv") as f:
            losses.append([row["loss"] for row in csv.DictReader(f)])
    assert len(losses[0]) == 6 and losses[0] == losses[1]
    ram, disk = (load_file(tmp_path / n / "model.safetensors") for n in ("ram", "disk"))
    assert all(torch.equal(ram[k], disk[k]) for k in ram)


def test_auto_streams_above_the_threshold_and_the_cli_takes_the_option(dataset: Path, tmp_path: Path) -> None:
    from flow_policy_node.cli import build_parser

    assert isinstance(ChunkDataset(dataset, horizon=4).frames[CAMERAS[0]], np.ndarray)  # 70 KB: in memory
    ds = ChunkDataset(dataset, horizon=4, frames=FrameCacheConfig(disk_above_mb=0.01))
    assert isinstance(ds.frames[CAMERAS[0]], FrameCache)
    assert ds.frames[CAMERAS[0]].path.parent == dataset / ".frame_cache"  # beside the data by default
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OSError, match="--cache-dir"):  # where no cache can be kept, say what to do
        ChunkDataset(dataset, horizon=4, frames=FrameCacheConfig("disk", cache_dir=str(tmp_path / "a_file")))

    argv = [
        "train",
        str(dataset),
        "--out",
        str(tmp_path / "ckpt"),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--horizon",
        "4",
    ]
    args = build_parser().parse_args([*argv, "--frames", "disk", "--cache-dir", str(tmp_path / "elsewhere")])
    assert args.func(args) == 0
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    cached = sorted(p.name for p in (tmp_path / "elsewhere").glob("ds-*/*.npy"))
    assert cached == sorted(f"{key}.npy" for key in CAMERAS)
    meta = json.loads((tmp_path / "ckpt" / "metadata.json").read_text())
    assert meta["train_config"]["frames"]["store"] == "disk"
