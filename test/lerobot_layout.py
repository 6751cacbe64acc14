"""LeRobot v3.0 datasets without the project's code: a rule checker and a `lerobot-record` stand-in.

Only pyarrow, PyAV, numpy and json here, so that both directions are judged by an
independent reader/writer: ``check_layout`` reads a dataset the way LeRobot's loader does
(info.json, tasks index, episodes table, data files by index range, video frames at
``from_timestamp + timestamp``) and asserts its rules; ``write_lerobot_record_dataset``
writes one the way ``lerobot-record`` does (its feature names, several episodes per
parquet and mp4 file, AV1 video, int fps, tasks as the pandas index).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

STATS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
BOOKKEEPING = {"timestamp", "frame_index", "episode_index", "index", "task_index"}


def decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return np.stack([f.to_ndarray(format="rgb24") for f in frames]), np.array([float(f.time) for f in frames])


def check_layout(root: Path) -> dict:
    """Assert LeRobot v3.0's rules on the dataset at ``root``; return what was read, per episode."""
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert type(info["fps"]) is int and info["fps"] > 0, info["fps"]
    fps = info["fps"]
    features = info["features"]
    videos = [k for k, f in features.items() if f["dtype"] == "video"]
    assert info["video_path"] == (
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if videos else None
    )
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert set(features) >= BOOKKEEPING
    for key in BOOKKEEPING:
        assert features[key]["shape"] == [1]
    for key in videos:
        assert features[key]["info"]["video.fps"] == fps and type(features[key]["info"]["video.fps"]) is int

    # Tasks: pandas writes the index (the task string) as a column named in its metadata.
    tasks_table = pq.read_table(root / "meta/tasks.parquet")
    pandas_meta = json.loads(tasks_table.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["task"], pandas_meta["index_columns"]
    assert tasks_table.schema.field("task_index").type == pa.int64()
    tasks = dict(zip(tasks_table["task"].to_pylist(), tasks_table["task_index"].to_pylist(), strict=True))
    assert sorted(tasks.values()) == list(range(len(tasks))) == list(range(info["total_tasks"]))

    episode_files = sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    episodes = pa.concat_tables(
        [pq.read_table(f) for f in episode_files], promote_options="default"
    ).to_pylist()
    episodes.sort(key=lambda e: e["episode_index"])
    assert [e["episode_index"] for e in episodes] == list(range(info["total_episodes"]))
    numeric = [k for k, f in features.items() if f["dtype"] not in ("video", "image", "string")]
    required = {
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    }
    for key in videos:
        required |= {
            f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
        }
    required |= {f"stats/{k}/{s}" for k in [*numeric, *videos] for s in STATS}
    read: dict[int, dict] = {}
    end = 0
    for e in episodes:
        assert required <= set(e), sorted(required - set(e))
        chunk, file = e["meta/episodes/chunk_index"], e["meta/episodes/file_index"]
        meta_file = root / f"meta/episodes/chunk-{chunk:03d}/file-{file:03d}.parquet"
        assert meta_file.is_file()
        n = e["length"]
        assert e["dataset_from_index"] == end and e["dataset_to_index"] == end + n
        end += n
        data = pq.read_table(
            root
            / info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        )
        rows = data.filter(pc.equal(data["episode_index"], e["episode_index"]))
        assert len(rows) == n
        assert rows["index"].to_pylist() == list(range(e["dataset_from_index"], e["dataset_to_index"]))
        assert rows["frame_index"].to_pylist() == list(range(n))
        assert data.schema.field("timestamp").type == pa.float32()
        np.testing.assert_allclose(rows["timestamp"].to_numpy(), np.arange(n) / fps, atol=1e-6)
        assert set(rows["task_index"].to_pylist()) == {tasks[t] for t in e["tasks"]}
        got = {"rows": rows, "frames": {}}
        for key in numeric:
            assert e[f"stats/{key}/count"] == [n]
        for key in videos:
            path = root / info["video_path"].format(
                video_key=key,
                chunk_index=e[f"videos/{key}/chunk_index"],
                file_index=e[f"videos/{key}/file_index"],
            )
            t0, t1 = e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"]
            assert t1 - t0 == np.float64(n) / fps or abs(t1 - t0 - n / fps) < 1e-6
            frames, times = decode(path)
            want = t0 + rows["timestamp"].to_numpy().astype(np.float64)
            idx = [int(np.argmin(np.abs(times - t))) for t in want]
            assert np.abs(times[idx] - want).max() < 1e-4, (key, e["episode_index"])  # LeRobot's tolerance
            got["frames"][key] = frames[idx]
            assert features[key]["shape"] == [frames.shape[1], frames.shape[2], 3]
            assert e[f"stats/{key}/count"] == [n]  # frames, not pixels
            assert np.asarray(e[f"stats/{key}/mean"]).shape == (3, 1, 1)
        read[e["episode_index"]] = got
    assert end == info["total_frames"]
    stats = json.loads((root / "meta/stats.json").read_text())
    for key in [*numeric, *videos]:
        assert set(stats[key]) >= STATS, key
        assert stats[key]["count"] == [info["total_frames"]]
    return read


# --- the other direction: a dataset as lerobot-record writes it --------------------------------

MOTORS = [
    f"{m}.pos"
    for m in (
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
        "wrist_roll",
        "wrist_yaw",
        "gripper",
    )
]
CAMERA = "observation.images.laptop"


def record_state(e: int, k: int) -> np.ndarray:
    return (0.1 * e + 0.01 * k + 0.001 * np.arange(7)).astype(np.float32)


def record_frame(e: int, k: int, size: int) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = 40 * e + 5 * k
    img[..., 1] = 128
    return img


def _vector_stats(x: np.ndarray) -> dict:
    x = x.astype(np.float64).reshape(len(x), -1)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    out.update({f"q{round(q * 100):02d}": np.quantile(x, q, axis=0) for q in (0.01, 0.1, 0.5, 0.9, 0.99)})
    return out


def _image_stats(frames: np.ndarray) -> dict:
    px = frames.reshape(-1, 3).astype(np.float64) / 255.0
    s = _vector_stats(px)
    return {k: (v if k == "count" else v.reshape(3, 1, 1)) for k, v in s.items()} | {
        "count": np.array([len(frames)])
    }


def _listify(stats: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in stats.items()}


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as ``DataFrame({"task_index": ...}, index=Index(tasks, name="task")).to_parquet``."""
    meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}), path)


def write_lerobot_record_dataset(
    root: Path, lengths: list[int], tasks: list[str], fps: int = 30, size: int = 32, per_file: int = 2
) -> None:
    """Episodes e = 0.. of lengths[e] frames with task tasks[e]; ``per_file`` episodes per file."""
    task_list = list(dict.fromkeys(tasks))
    rows_by_file: dict[int, list[pa.Table]] = {}
    episode_rows: list[dict] = []
    all_state, all_action, all_frames, all_book = [], [], [], {k: [] for k in BOOKKEEPING}
    index = 0
    video_start = 0.0
    writer = None
    for e, n in enumerate(lengths):
        file_index = e // per_file
        if e % per_file == 0:
            if writer is not None:
                writer[1].close()
            path = root / f"videos/{CAMERA}/chunk-000/file-{file_index:03d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(path), "w")
            stream = container.add_stream("libsvtav1", rate=fps)  # LeRobot's default codec
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "30", "g": "2", "preset": "12"}
            writer = (stream, container)
            video_start = 0.0
        stream, container = writer
        frames = np.stack([record_frame(e, k, size) for k in range(n)])
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        if e % per_file == per_file - 1 or e == len(lengths) - 1:
            for packet in stream.encode():
                container.mux(packet)
            container.close()
            writer = None
        state = np.stack([record_state(e, k) for k in range(n)])
        action = np.stack([record_state(e, k + 1) for k in range(n)])
        book = {
            "timestamp": (np.arange(n) / fps).astype(np.float32),
            "frame_index": np.arange(n),
            "episode_index": np.full(n, e),
            "index": np.arange(index, index + n),
            "task_index": np.full(n, task_list.index(tasks[e])),
        }
        vec = lambda x: pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), 7)  # noqa: E731
        rows_by_file.setdefault(file_index, []).append(
            pa.table(
                {
                    "action": vec(action),
                    "observation.state": vec(state),
                    **{k: pa.array(v) for k, v in book.items()},
                }
            )
        )
        row = {
            "episode_index": e,
            "tasks": [tasks[e]],
            "length": n,
            "data/chunk_index": 0,
            "data/file_index": file_index,
            "dataset_from_index": index,
            "dataset_to_index": index + n,
            f"videos/{CAMERA}/chunk_index": 0,
            f"videos/{CAMERA}/file_index": file_index,
            f"videos/{CAMERA}/from_timestamp": video_start,
            f"videos/{CAMERA}/to_timestamp": video_start + n / fps,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": file_index,
        }
        ep_stats = {
            "action": _vector_stats(action),
            "observation.state": _vector_stats(state),
            CAMERA: _image_stats(frames),
        }
        ep_stats.update({k: _vector_stats(v) for k, v in book.items()})
        for feature, s in ep_stats.items():
            row.update({f"stats/{feature}/{k}": v for k, v in _listify(s).items()})
        episode_rows.append(row)
        video_start += n / fps
        index += n
        all_state.append(state)
        all_action.append(action)
        all_frames.append(frames)
        for k, v in book.items():
            all_book[k].append(v)
    for f, tables in rows_by_file.items():
        path = root / f"data/chunk-000/file-{f:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), path)
        meta = root / f"meta/episodes/chunk-000/file-{f:03d}.parquet"
        meta.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist([r for r in episode_rows if r["meta/episodes/file_index"] == f]), meta
        )
    _write_tasks(root / "meta/tasks.parquet", task_list)
    stats = {
        "action": _vector_stats(np.concatenate(all_action)),
        "observation.state": _vector_stats(np.concatenate(all_state)),
        CAMERA: _image_stats(np.concatenate(all_frames)),
    }
    stats.update({k: _vector_stats(np.concatenate(v)) for k, v in all_book.items()})
    (root / "meta/stats.json").write_text(json.dumps({k: _listify(v) for k, v in stats.items()}, indent=4))
    motor = {"dtype": "float32", "shape": [7], "names": MOTORS}
    features = {
        "action": motor,
        "observation.state": motor,
        CAMERA: {
            "dtype": "video",
            "shape": [size, size, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": size,
                "video.width": size,
                "video.codec": "av1",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        },
    }
    features.update(
        {
            k: {"dtype": "float32" if k == "timestamp" else "int64", "shape": [1], "names": None}
            for k in BOOKKEEPING
        }
    )
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so101_follower",
        "total_episodes": len(lengths),
        "total_frames": index,
        "total_tasks": len(task_list),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features,
    }
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
