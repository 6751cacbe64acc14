"""LeRobotDataset v3.0 layout, as LeRobot itself writes it: names, paths, tasks and stats rules.

meta/info.json                                   features, fps (an int), totals, path templates
meta/stats.json                                  per-feature mean/std/min/max/count/quantiles
meta/tasks.parquet                               task string as the (pandas) index, task_index
meta/episodes/chunk-CCC/file-FFF.parquet         one row per episode: where its frames live
                                                 (data/*, videos/<key>/*, dataset_from/to_index)
                                                 and its own stats (stats/<feature>/<stat>)
data/chunk-CCC/file-FFF.parquet                  one row per frame, several episodes per file
videos/<image key>/chunk-CCC/file-FFF.mp4        several episodes per file, back to back; an
                                                 episode is [from_timestamp, to_timestamp)

A file takes episodes until it reaches ``data_files_size_in_mb`` / ``video_files_size_in_mb``;
then the next file starts, and after ``chunks_size`` files the next chunk. The writer here
(:class:`LeRobotWriter`) and the reader (:mod:`flow_policy_node.data.dataset`) share these
names; nothing else in the project spells them out.

Rules taken from LeRobot's source (``lerobot/datasets``: ``dataset_writer.py``,
``dataset_metadata.py``, ``io_utils.py``, ``compute_stats.py``, ``feature_utils.py``):
``fps`` is an int and ``video_path`` is null without videos; tasks are written with pandas
(``DataFrame({"task_index": ...}, index=Index(tasks, name="task"))``) and read back with
``pd.read_parquet``, so the index must be the task string; image stats are per channel,
shaped (3, 1, 1), in [0, 1], with ``count`` the number of frames; every numeric feature has
stats, the bookkeeping columns (timestamp, frame_index, ...) included.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = EPISODES_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_MB = 100  # LeRobot's defaults (DEFAULT_DATA_FILE_SIZE_IN_MB, ..._VIDEO_...)
VIDEO_FILE_MB = 200
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
# Columns every LeRobot dataset has besides its own features (all shape (1,)).
BOOKKEEPING = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
# H.264 in 4:4:4 at a low CRF: near-lossless colour for 96x96 frames (mean abs error
# ~1/255 per channel, measured by the round-trip test), decodable everywhere.
VIDEO_CODEC, VIDEO_PIX_FMT, VIDEO_CRF = "libx264", "yuv444p", "10"


def data_file(chunk: int = 0, file: int = 0) -> str:
    return DATA_PATH.format(chunk_index=chunk, file_index=file)


def video_file(key: str, chunk: int = 0, file: int = 0) -> str:
    return VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)


def episodes_file(chunk: int = 0, file: int = 0) -> str:
    return EPISODES_PATH.format(chunk_index=chunk, file_index=file)


def next_file(chunk: int, file: int, chunks_size: int = CHUNKS_SIZE) -> tuple[int, int]:
    """The (chunk, file) after this one: files fill a chunk, then the next chunk starts."""
    return (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)


# Episode-table columns.
DATA_CHUNK, DATA_FILE = "data/chunk_index", "data/file_index"
META_CHUNK, META_FILE = "meta/episodes/chunk_index", "meta/episodes/file_index"
FROM_INDEX, TO_INDEX = "dataset_from_index", "dataset_to_index"


def video_columns(key: str) -> tuple[str, str, str, str]:
    """(chunk_index, file_index, from_timestamp, to_timestamp) columns of a video feature."""
    return tuple(f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"))


def stats_column(feature: str, stat: str) -> str:
    return f"stats/{feature}/{stat}"


# --- tasks --------------------------------------------------------------------------------


def write_tasks(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame (index ``task``, column ``task_index``).

    Written with pyarrow and the ``pandas`` schema metadata pandas itself would add, so
    ``pd.read_parquet`` restores the task strings as the index without pandas being needed here.
    """
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
    )
    pandas_meta = {
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
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}), path)


def read_tasks(path: Path) -> list[str]:
    """Task strings in task_index order. pyarrow returns a named pandas index as a plain
    ``task`` column, so LeRobot's files (and older ones with a ``task`` column) read alike."""
    d = pq.read_table(path).to_pydict()
    if "task" not in d:
        raise ValueError(f"{path}: no task strings (columns {sorted(d)}; expected index or column 'task')")
    return [t for _, t in sorted(zip(d["task_index"], d["task"], strict=True))]


# --- stats ----------------------------------------------------------------------------------


def vector_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's stats of an (N, ...) numeric feature over its N frames (exact quantiles)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    out = {
        "min": flat.min(0),
        "max": flat.max(0),
        "mean": flat.mean(0),
        "std": flat.std(0),
        "count": np.array([len(x)]),
    }
    for q in QUANTILES:
        out[f"q{round(q * 100):02d}"] = np.quantile(flat, q, axis=0)
    return out


@dataclass
class ImageStats:
    """Per-channel stats of uint8 RGB frames, exact over every pixel of every frame.

    A 256-bin histogram per channel holds everything: mean, std and the quantiles
    (np.quantile's linear rule on the sorted pixels) come from it without sampling, and
    two episodes' histograms add up to the dataset's.
    """

    hist: np.ndarray = field(default_factory=lambda: np.zeros((3, 256), np.int64))
    frames: int = 0

    def add(self, frames: np.ndarray) -> None:
        """frames: (N, h, w, 3) uint8."""
        for c in range(3):
            self.hist[c] += np.bincount(frames[..., c].reshape(-1), minlength=256)
        self.frames += len(frames)

    def merge(self, other: ImageStats) -> None:
        self.hist += other.hist
        self.frames += other.frames

    def stats(self) -> dict[str, np.ndarray]:
        values = np.arange(256, dtype=np.float64) / 255.0
        n = self.hist.sum(1)
        mean = (self.hist * values).sum(1) / n
        std = np.sqrt((self.hist * (values - mean[:, None]) ** 2).sum(1) / n)
        nonzero = [np.flatnonzero(h) for h in self.hist]
        out = {
            "min": np.array([v[0] for v in nonzero]) / 255.0,
            "max": np.array([v[-1] for v in nonzero]) / 255.0,
            "mean": mean,
            "std": std,
        }
        for q in QUANTILES:
            out[f"q{round(q * 100):02d}"] = np.array([_hist_quantile(h, q) for h in self.hist]) / 255.0
        # (3, 1, 1) as LeRobot keeps them (keepdims over batch, height, width); count in frames.
        out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
        out["count"] = np.array([self.frames])
        return out


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    cum = np.cumsum(hist)
    pos = q * (cum[-1] - 1)
    lo = int(np.floor(pos))
    v_lo = int(np.searchsorted(cum, lo, side="right"))
    v_hi = int(np.searchsorted(cum, min(lo + 1, cum[-1] - 1), side="right"))
    return v_lo + (pos - lo) * (v_hi - v_lo)


def to_json(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: np.asarray(v).tolist() for k, v in stats.items()}


# --- writing ----------------------------------------------------------------------------------


class VideoWriter:
    def __init__(self, path: Path, fps: int, size: tuple[int, int]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(VIDEO_CODEC, rate=fps)
        self.stream.height, self.stream.width = size
        self.stream.pix_fmt = VIDEO_PIX_FMT
        self.stream.options = {"crf": VIDEO_CRF, "preset": "veryfast", "g": "2"}
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            self.container.mux(packet)
        self.frames += 1

    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


@dataclass
class WriterConfig:
    fps: int = 10
    robot_type: str = "flow_arm"
    chunks_size: int = CHUNKS_SIZE
    data_files_size_in_mb: float = DATA_FILE_MB
    video_files_size_in_mb: float = VIDEO_FILE_MB


class LeRobotWriter:
    """Writes a LeRobot v3.0 dataset episode by episode, as LeRobot's own writer does:
    ``create`` ... ``add_episode`` ... ``finalize``.

    The dataset is written under ``<root>.partial`` and appears at ``root`` only when
    ``finalize`` has written its metadata, so a reader never finds half a dataset;
    ``discard`` drops an unfinished one.
    """

    @classmethod
    def create(
        cls,
        root: Path,
        features: dict[str, list[str]],
        cameras: list[str],
        cfg: WriterConfig | None = None,
    ) -> LeRobotWriter:
        """Start a dataset at ``root``, which must not exist or be empty.

        features: name -> element names of the per-frame float32 vectors, in column order.
        cameras: image keys (``observation.images.<name>``) written as videos; every frame of
        a camera must have the same size.
        """
        root = Path(root)
        cfg = cfg or WriterConfig()
        if int(cfg.fps) != cfg.fps or cfg.fps <= 0:
            raise ValueError(f"LeRobot v3 needs a positive integer fps, got {cfg.fps}")
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f"output directory {root} is not empty")
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # left by a run that was interrupted
        return cls(root, partial, features, cameras, cfg)

    def __init__(
        self, root: Path, partial: Path, features: dict[str, list[str]], cameras: list[str], cfg: WriterConfig
    ) -> None:
        """Use :meth:`create`."""
        self.final_root, self.root, self.cfg = root, partial, cfg
        self.vector_names = dict(features)
        self.cameras = list(cameras)
        self.tasks: list[str] = []
        self.episodes: list[dict] = []
        self.columns: dict[str, list[np.ndarray]] = {k: [] for k in [*features, *BOOKKEEPING]}
        self.image_stats = {k: ImageStats() for k in self.cameras}
        self.videos: dict[str, VideoWriter] = {}
        self.video_at = {k: (0, 0) for k in self.cameras}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.data_at = (0, 0)
        self._data_writer: pq.ParquetWriter | None = None
        self._frames = 0

    def add_episode(
        self,
        vectors: dict[str, np.ndarray],
        frames: dict[str, list[np.ndarray]],
        task: str,
        extra: dict | None = None,
    ) -> int:
        """vectors: feature -> (n, d); frames: image key -> n RGB frames. Returns the episode index."""
        n = len(next(iter(vectors.values())))
        for key in self.cameras:  # checked before anything is written
            size = self.sizes.setdefault(key, frames[key][0].shape[:2])
            if len(frames[key]) != n or any(f.shape[:2] != size for f in frames[key]):
                raise ValueError(f"{key}: needs {n} frames of {size[0]}x{size[1]}")
        e = len(self.episodes)
        if task not in self.tasks:
            self.tasks.append(task)
        columns = {k: np.asarray(v, np.float32).reshape(n, -1) for k, v in vectors.items()}
        columns["timestamp"] = (np.arange(n) / self.cfg.fps).astype(np.float32)
        columns["frame_index"] = np.arange(n, dtype=np.int64)
        columns["episode_index"] = np.full(n, e, np.int64)
        columns["index"] = np.arange(self._frames, self._frames + n, dtype=np.int64)
        columns["task_index"] = np.full(n, self.tasks.index(task), np.int64)
        row = {"episode_index": e, "tasks": [task], "length": n}
        row.update(self._write_data(columns, n))
        stats = {k: vector_stats(v) for k, v in columns.items()}
        for key in self.cameras:
            row.update(self._write_video(key, frames[key]))
            episode_stats = ImageStats()
            episode_stats.add(np.stack(frames[key]))
            self.image_stats[key].merge(episode_stats)
            stats[key] = episode_stats.stats()
        row.update({META_CHUNK: 0, META_FILE: 0})
        for feature, s in stats.items():
            row.update({stats_column(feature, k): np.asarray(v).tolist() for k, v in s.items()})
        row.update(extra or {})
        self.episodes.append(row)
        for k, v in columns.items():
            self.columns[k].append(v)
        self._frames += n
        return e

    def _write_data(self, columns: dict[str, np.ndarray], n: int) -> dict:
        def arrow(v: np.ndarray) -> pa.Array:
            if v.ndim == 1:
                return pa.array(v)
            return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), v.shape[1])

        table = pa.table({k: arrow(v) for k, v in columns.items()})
        if self._data_writer is not None:
            path = self.root / data_file(*self.data_at)
            size = path.stat().st_size / 2**20
            per_frame = size / max(1, self._frames - self._data_start)
            if size + per_frame * n >= self.cfg.data_files_size_in_mb:
                self._data_writer.close()
                self._data_writer = None
                self.data_at = next_file(*self.data_at, self.cfg.chunks_size)
        if self._data_writer is None:
            path = self.root / data_file(*self.data_at)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = pq.ParquetWriter(path, table.schema)
            self._data_start = self._frames
        self._data_writer.write_table(table)
        return {
            DATA_CHUNK: self.data_at[0],
            DATA_FILE: self.data_at[1],
            FROM_INDEX: self._frames,
            TO_INDEX: self._frames + n,
        }

    def _write_video(self, key: str, frames: list[np.ndarray]) -> dict:
        w = self.videos.get(key)
        if w is not None and w.size_mb() >= self.cfg.video_files_size_in_mb:
            w.close()
            self.video_at[key] = next_file(*self.video_at[key], self.cfg.chunks_size)
            w = None
        if w is None:
            w = self.videos[key] = VideoWriter(
                self.root / video_file(key, *self.video_at[key]), self.cfg.fps, frames[0].shape[:2]
            )
        start = w.frames / self.cfg.fps
        for img in frames:
            w.add(img)
        chunk_col, file_col, from_col, to_col = video_columns(key)
        return {
            chunk_col: self.video_at[key][0],
            file_col: self.video_at[key][1],
            from_col: start,
            to_col: w.frames / self.cfg.fps,
        }

    def finalize(self) -> None:
        for w in self.videos.values():
            w.close()
        if self._data_writer is not None:
            self._data_writer.close()
        pq.write_table(pa.Table.from_pylist(self.episodes), _mkparent(self.root / episodes_file()))
        write_tasks(self.root / TASKS_PATH, self.tasks)
        data = {k: np.concatenate(v) for k, v in self.columns.items()}
        stats = {k: to_json(vector_stats(v)) for k, v in data.items()}
        stats.update({k: to_json(s.stats()) for k, s in self.image_stats.items()})
        features: dict[str, dict] = {}
        for key in self.cameras:
            h, w = self.sizes[key]
            features[key] = {
                "dtype": "video",
                "shape": [h, w, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": h,
                    "video.width": w,
                    "video.codec": "h264",
                    "video.pix_fmt": VIDEO_PIX_FMT,
                    # LeRobot <= 0.4 reads the first spelling, later versions the second.
                    "video.is_depth_map": False,
                    "is_depth_map": False,
                    "video.fps": int(self.cfg.fps),
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        for key, names in self.vector_names.items():
            features[key] = {"dtype": "float32", "shape": [len(names)], "names": list(names)}
        for key, dtype in BOOKKEEPING.items():
            features[key] = {"dtype": dtype, "shape": [1], "names": None}
        n_ep = len(self.episodes)
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.cfg.robot_type,
            "total_episodes": n_ep,
            "total_frames": self._frames,
            "total_tasks": len(self.tasks),
            "chunks_size": self.cfg.chunks_size,
            "data_files_size_in_mb": self.cfg.data_files_size_in_mb,
            "video_files_size_in_mb": self.cfg.video_files_size_in_mb,
            "fps": int(self.cfg.fps),
            "splits": {"train": f"0:{n_ep}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.cameras else None,
            "features": features,
        }
        (self.root / INFO_PATH).write_text(json.dumps(info, indent=4))
        (self.root / STATS_PATH).write_text(json.dumps(stats, indent=4))
        if self.final_root.exists():  # an empty directory (create refuses any other)
            self.final_root.rmdir()
        self.root.rename(self.final_root)
        self.root = self.final_root

    def discard(self) -> None:
        """Drop an unfinished dataset (nothing appears at the root)."""
        for w in self.videos.values():
            w.close()
        if self._data_writer is not None:
            self._data_writer.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
