"""ChunkDataset: training samples from a LeRobot v3.0 dataset, ours or one LeRobot wrote.

Its episodes are read into an :class:`~flow_policy_node.data.episodes.EpisodeDataset`
(sample i: the observation at frame i, the action chunk a[i : i + H]). Videos are decoded
once, at construction, so an epoch costs no decoding: into uint8 arrays in memory, or, for
datasets whose frames would not fit (2 cameras at 224x224: 300 KB a frame, 100 k frames
~ 30 GB), into a cache on disk that samples read frame by frame (:mod:`.frames`). Decoding
streams frame by frame either way, so opening a dataset never holds more than its result.

Which dataset feature plays which part is configuration (:class:`FeatureMap`), never a
guess: a dataset from ``lerobot-record`` names its cameras after the robot's
(``observation.images.laptop``), its joints after the motors (``shoulder_pan.pos``). The
defaults are the names ``flow-policy convert`` writes; a feature that is not there is an
error naming it and listing what the dataset has.

Episodes are found through the episodes table (meta/episodes/*), so any number of
episodes per data file and per video file, in any number of chunks, read the same: an
episode's rows are its ``episode_index`` rows in ``frame_index`` order, and its frames
are those of its video file at ``from_timestamp + timestamp`` (within ``tolerance_s``, as
LeRobot decodes them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flow_policy_node.data import lerobot
from flow_policy_node.data.episodes import EpisodeDataset
from flow_policy_node.data.frames import FrameCache, FrameCacheConfig, Pieces, cached, fingerprint, in_memory
from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.observation import ACTION, GOAL, IMAGE_PREFIX, STATE, image_key


class DatasetError(ValueError):
    """The dataset directory is missing pieces or inconsistent; the text says which."""


@dataclass
class FeatureMap:
    """Which dataset feature is which input of ours.

    state, action: the per-frame vectors (same length). goal: a 3-vector goal point, or
    None for datasets without one (the policy then sees zeros, as at run time without a
    clicked point). cameras: our camera name -> the dataset's image key; None takes every
    ``observation.images.<name>`` feature under its own name. joint_names: the robot's
    joint names for the state/action elements, in their order, when the dataset names
    them otherwise (LeRobot's ``shoulder_pan.pos``); None uses the dataset's names.
    """

    state: str = STATE
    action: str = ACTION
    goal: str | None = GOAL
    cameras: dict[str, str] | None = None
    joint_names: list[str] | None = None
    tolerance_s: float = 1e-4  # video frame vs. timestamp, LeRobot's default

    @classmethod
    def from_dict(cls, d: dict) -> FeatureMap:
        return cls(**d)


def _names(feature: dict) -> list[str] | None:
    names = feature.get("names")
    if isinstance(names, dict):  # LeRobot v2 style: {"motors": [...]}
        names = next(iter(names.values()), None) if len(names) == 1 else None
    return list(names) if names else None


def _vectors(table: pa.Table, key: str) -> np.ndarray:
    column = table[key].combine_chunks()
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        return np.array(column.flatten(), np.float32).reshape(len(table), -1)
    return np.array(column, np.float32).reshape(len(table), -1)


class ChunkDataset(EpisodeDataset):
    def __init__(
        self,
        root: str | Path,
        horizon: int = 16,
        cameras: tuple[str, ...] | None = None,
        features: FeatureMap | None = None,
        frames: FrameCacheConfig | None = None,
    ) -> None:
        """cameras: the ones to load (None: all mapped); unused videos are not decoded at all.
        frames: where the decoded frames live (memory or the disk cache; default: by size)."""
        self.root = Path(root)
        fmap = features or FeatureMap()
        info_path = self.root / lerobot.INFO_PATH
        if not info_path.is_file():
            raise DatasetError(
                f"{self.root} is not a dataset: {info_path} is missing (run `flow-policy convert`)"
            )
        self.info = json.loads(info_path.read_text())
        version = str(self.info.get("codebase_version"))
        if not version.startswith("v3."):
            raise DatasetError(f"{self.root}: codebase_version {version}, expected v3.0 (LeRobot v3 layout)")
        feats = self.info["features"]
        have = sorted(feats)

        image_features = {k for k, f in feats.items() if f["dtype"] in ("video", "image")}
        mapped = fmap.cameras
        if mapped is None:
            mapped = {
                k.removeprefix(IMAGE_PREFIX): k for k in sorted(image_features) if k.startswith(IMAGE_PREFIX)
            }
        wanted = {"state": fmap.state, "action": fmap.action}
        if fmap.goal is not None:
            wanted["goal"] = fmap.goal
        wanted.update({f"camera {c}": k for c, k in mapped.items()})
        missing = [f"{role} {key!r}" for role, key in wanted.items() if key not in feats]
        if missing:
            raise DatasetError(
                f"{self.root}: missing features: {', '.join(missing)}; the dataset has {have}. "
                "Map them (FeatureMap, or `flow-policy train --state-feature/--action-feature/"
                "--goal-feature/--camera NAME=KEY`)."
            )
        not_images = [k for k in mapped.values() if k not in image_features]
        if not_images:
            raise DatasetError(f"{self.root}: {not_images} are not image or video features")
        if cameras is not None:
            unknown = [c for c in cameras if c not in mapped]
            if unknown:
                raise DatasetError(f"cameras {unknown} are not in {self.root} (it has {sorted(mapped)})")
            mapped = {c: mapped[c] for c in cameras}
        self._source = {image_key(c): k for c, k in mapped.items()}

        d_state, d_action = (int(np.prod(feats[k]["shape"])) for k in (fmap.state, fmap.action))
        if d_state != d_action:
            raise DatasetError(
                f"{self.root}: state {fmap.state!r} has {d_state} elements, action {fmap.action!r} "
                f"{d_action}; the policy predicts joint positions, so they must match"
            )
        names = fmap.joint_names or _names(feats[fmap.state])
        if names is None:
            raise DatasetError(f"{self.root}: {fmap.state!r} names no joints; give FeatureMap.joint_names")
        if len(names) != d_state:
            raise DatasetError(f"{self.root}: {len(names)} joint names {names} for {d_state} state elements")
        shapes = [feats[k]["shape"] for k in mapped.values()]

        raw_stats = json.loads((self.root / lerobot.STATS_PATH).read_text())
        stats = {STATE: raw_stats.get(fmap.state), ACTION: raw_stats.get(fmap.action)}
        if fmap.goal is not None:
            stats[GOAL] = raw_stats.get(fmap.goal)
        stats.update({k: raw_stats.get(src) for k, src in self._source.items()})
        no_stats = [k for k, v in stats.items() if v is None]
        if no_stats:
            raise DatasetError(f"{self.root}: {lerobot.STATS_PATH} has no stats for {no_stats}")
        meta = DatasetMeta(
            joint_names=tuple(names),
            cameras=tuple(mapped),
            image_size=(int(shapes[0][0]), int(shapes[0][1])) if shapes else (0, 0),
            fps=float(self.info["fps"]),
            tasks=tuple(lerobot.read_tasks(self.root / lerobot.TASKS_PATH)),
            stats=stats,
        )

        episodes, episode_files = self._episodes()
        table, parts = self._data(episodes, fmap)
        n = len(table)
        order = np.lexsort((table["frame_index"].to_numpy(), table["episode_index"].to_numpy()))
        table = table.take(pa.array(order))
        episode = table["episode_index"].to_numpy()
        lengths = dict(zip(*np.unique(episode, return_counts=True), strict=True))
        for e, length in zip(episodes["episode_index"], episodes["length"], strict=True):
            if lengths.get(e, 0) != length:
                raise DatasetError(
                    f"{self.root}: episode {e} has {lengths.get(e, 0)} data rows, length {length}"
                )

        store = frames or FrameCacheConfig()
        decoded_mb = sum(n * int(np.prod(feats[src]["shape"])) for src in self._source.values()) / 2**20
        on_disk = store.on_disk(decoded_mb)
        timestamps = table["timestamp"].to_numpy().astype(np.float64)
        row_of = np.empty(n, np.int64)  # row of the sorted table for each row as read
        row_of[order] = np.arange(n)
        loaded: dict[str, np.ndarray | FrameCache] = {}
        for key, src in self._source.items():
            shape = (n, *(int(x) for x in feats[src]["shape"]))
            inputs = [info_path, *episode_files, *(p for p, _ in parts)]
            if feats[src]["dtype"] == "image":
                decode = partial(self._image_pieces, src, shape, parts, row_of)
            else:
                videos = self._video_files(src, episodes)
                inputs += list(videos)
                decode = partial(self._video_pieces, src, shape, videos, timestamps, fmap.tolerance_s)
            if on_disk:
                source = fingerprint(inputs, self.root, {"key": src, "tolerance_s": fmap.tolerance_s})
                loaded[key] = cached(store.directory(self.root), src, shape, source, decode)
            else:
                loaded[key] = in_memory(shape, decode(), f"decode {src}")
        super().__init__(
            meta,
            horizon,
            state=_vectors(table, fmap.state),
            action=_vectors(table, fmap.action),
            goal=_vectors(table, fmap.goal) if fmap.goal is not None else np.zeros((n, 3), np.float32),
            task_index=table["task_index"].to_numpy(),
            episode=episode,
            frames=loaded,
        )

    def _episodes(self) -> tuple[dict[str, list], list[Path]]:
        files = sorted((self.root / lerobot.EPISODES_DIR).glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(f"{self.root}: no episodes table under {lerobot.EPISODES_DIR}")
        tables = []
        for f in files:
            schema = pq.read_schema(f)
            tables.append(pq.read_table(f, columns=[c for c in schema.names if not c.startswith("stats/")]))
        episodes = pa.concat_tables(tables, promote_options="default")
        episodes = episodes.take(pa.array(np.argsort(episodes["episode_index"].to_numpy(), kind="stable")))
        return episodes.to_pydict(), files

    def _data(
        self, episodes: dict[str, list], fmap: FeatureMap
    ) -> tuple[pa.Table, list[tuple[Path, np.ndarray]]]:
        """The per-frame vectors of the episodes, file after file, and for each data file the
        rows it contributes (images are not read here: they are decoded as they stream)."""
        columns = [fmap.state, fmap.action, "episode_index", "frame_index", "task_index", "timestamp"]
        columns += [fmap.goal] if fmap.goal is not None else []
        where = sorted(set(zip(episodes[lerobot.DATA_CHUNK], episodes[lerobot.DATA_FILE], strict=True)))
        template = self.info.get("data_path") or lerobot.DATA_PATH
        paths = [self.root / template.format(chunk_index=c, file_index=f) for c, f in where]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DatasetError(f"{self.root}: data files {missing} named by the episodes table are missing")
        wanted = list(set(episodes["episode_index"]))
        tables, parts = [], []
        for p in paths:
            t = pq.read_table(p, columns=columns)
            keep = np.isin(t["episode_index"].to_numpy(), wanted)
            tables.append(t.filter(pa.array(keep)))
            parts.append((p, keep))
        return pa.concat_tables(tables), parts

    def _video_files(
        self, key: str, episodes: dict[str, list]
    ) -> dict[Path, list[tuple[int, int, int, float]]]:
        """Each video file of ``key`` with its episodes: (episode, first row, length, start time)."""
        chunk_col, file_col, from_col, _ = lerobot.video_columns(key)
        absent = [c for c in (chunk_col, file_col, from_col) if c not in episodes]
        if absent:
            raise DatasetError(f"{self.root}: the episodes table lacks {absent} for video {key!r}")
        template = self.info.get("video_path") or lerobot.VIDEO_PATH
        files: dict[Path, list[tuple[int, int, int, float]]] = {}
        start = 0
        for e, length, c, f, t0 in zip(
            episodes["episode_index"],
            episodes["length"],
            episodes[chunk_col],
            episodes[file_col],
            episodes[from_col],
            strict=True,
        ):
            path = self.root / template.format(video_key=key, chunk_index=c, file_index=f)
            if not path.is_file():
                raise DatasetError(f"{self.root}: video {path} of episode {e} is missing")
            files.setdefault(path, []).append((e, start, length, t0))
            start += length
        return files

    def _video_pieces(
        self,
        key: str,
        shape: tuple[int, ...],
        files: dict[Path, list[tuple[int, int, int, float]]],
        timestamps: np.ndarray,
        tol: float,
    ) -> Pieces:
        """Each row's frame: the one nearest ``from_timestamp + timestamp`` in its episode's
        video, within ``tol`` (as LeRobot decodes them)."""
        for path, eps in files.items():
            yield from self._one_video(key, shape, path, eps, timestamps, tol)

    def _one_video(
        self,
        key: str,
        shape: tuple[int, ...],
        path: Path,
        eps: list[tuple[int, int, int, float]],
        timestamps: np.ndarray,
        tol: float,
    ) -> Pieces:
        """A video decoded once, in one pass, holding two frames: a row's nearest frame is
        known as soon as the first frame at or after its time arrives."""
        rows = np.concatenate([np.arange(s, s + n) for _, s, n, _ in eps])
        query = np.concatenate([t0 + timestamps[s : s + n] for _, s, n, t0 in eps])
        by_time = np.argsort(query, kind="stable")
        rows, query = rows[by_time], query[by_time]

        def matched(frame: np.ndarray, t: float, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            off = np.abs(t - query[sel])
            if off.max() > tol:
                k = int(sel[off.argmax()])
                e, s, _, _ = next(ep for ep in eps if ep[1] <= rows[k] < ep[1] + ep[2])
                raise DatasetError(
                    f"{self.root}: {key} episode {e} frame {rows[k] - s}: no video frame within {tol} s "
                    f"of {query[k]:.4f} s in {path.name} (nearest {t:.4f} s)"
                )
            if frame.shape != shape[1:]:
                raise DatasetError(
                    f"{self.root}: {path.name} has {frame.shape} frames, info.json says {key} is {shape[1:]}"
                )
            return rows[sel], frame

        j, prev = 0, None  # the next row to place; the previous frame and its time
        with av.open(str(path)) as container:
            for f in container.decode(video=0):
                t, frame = float(f.time), f.to_ndarray(format="rgb24")
                k = int(np.searchsorted(query, t, side="right"))  # rows j..k-1 lie at or before t
                if k > j:
                    sel = np.arange(j, k)
                    nearer_prev = query[sel] - prev[1] < t - query[sel] if prev else np.zeros(k - j, bool)
                    if nearer_prev.any():
                        yield matched(*prev, sel[nearer_prev])
                    if not nearer_prev.all():
                        yield matched(frame, t, sel[~nearer_prev])
                    j = k
                prev = (frame, t)
        if prev is None:
            raise DatasetError(f"{self.root}: {path} holds no video frames")
        if j < len(query):  # rows after the last frame
            yield matched(*prev, np.arange(j, len(query)))

    def _image_pieces(
        self, key: str, shape: tuple[int, ...], parts: list[tuple[Path, np.ndarray]], row_of: np.ndarray
    ) -> Pieces:
        """LeRobot ``image`` features: encoded images (PNG) in the data parquet, read a batch
        at a time."""
        i = 0  # row as read, over all files
        for path, keep in parts:
            at = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=64, columns=[key]):
                cells = batch.column(0).to_pylist()
                for cell, kept in zip(cells, keep[at : at + len(cells)], strict=True):
                    if kept:
                        frame = _decode_image(key, cell)
                        if frame.shape != shape[1:]:
                            raise DatasetError(
                                f"{self.root}: {key} has {frame.shape} images, info.json says {shape[1:]}"
                            )
                        yield row_of[i : i + 1], frame
                        i += 1
                at += len(cells)


def _decode_image(key: str, cell: dict | bytes) -> np.ndarray:
    data = cell["bytes"] if isinstance(cell, dict) else cell
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"{key}: an image cell could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
