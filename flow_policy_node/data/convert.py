"""rosbag2 episodes -> LeRobotDataset v3 (no rclpy: bags are read with ``rosbags``).

Time base: a message's header stamp when it has one that is non-zero, else the bag's
log (receive) time. Header stamps are what the robot measured; log times include
transport delay. Every stream is resampled onto an exact grid t_k = t_0 + k / fps, where
t_0 is the first instant every required stream has data:

- state and images: the latest sample at or before t_k; older than ``max_gap`` s counts
  as a gap (a dropped tick);
- action: the commanded joint targets at t_k + 1/fps, from the trajectory that is active
  then (interpolated between its points; joints it does not name keep the state), or
  the next state when no trajectory topic is configured;
- task: the episode's recorded task, else the first command on the command topic;
- goal: the latest goal point at or before t_k, zeros when none.

Each episode gets a validation report (frames, gap ticks, duplicated samples, stamp
jitter, out-of-order stamps); episodes with too many gaps, NaNs, missing topics or joints,
no task or no data are skipped with the reason, never written half-right.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml
from rosbags.highlevel import AnyReader
from tqdm import tqdm

from flow_policy_node.data import lerobot
from flow_policy_node.images import ImageError, compressed_to_rgb, image_to_rgb, resize_rgb
from flow_policy_node.observation import ACTION, GOAL, STATE, image_key
from flow_policy_node.robot import default_arm


class ConversionError(ValueError):
    """The input as a whole cannot be converted; the text says why."""


class EpisodeSkipped(Exception):
    """One episode cannot be converted; the text says why."""


@dataclass
class ConvertConfig:
    fps: int = 10  # LeRobot v3 datasets have an integer frame rate
    state_topic: str = "/joint_states"
    cameras: dict[str, str] = field(
        default_factory=lambda: {"front": "/camera/front/image_raw", "wrist": "/camera/wrist/image_raw"}
    )
    action_topic: str | None = "/arm_controller/joint_trajectory"
    command_topic: str = "/flow_policy/command"
    goal_topic: str = "/clicked_point"
    joint_names: list[str] = field(default_factory=lambda: list(default_arm().joint_names))
    image_size: tuple[int, int] | None = None  # (h, w); None keeps the recorded size
    max_gap: float = 0.25  # s without a sample before a tick counts as a gap
    max_gap_fraction: float = 0.05  # more gap ticks than this skips the episode
    max_out_of_order: float = 0.01  # fraction of a stream's stamps allowed to go backwards (then sorted)
    # A data / video file takes episodes until it is this large (LeRobot's defaults).
    data_files_size_in_mb: float = lerobot.DATA_FILE_MB
    video_files_size_in_mb: float = lerobot.VIDEO_FILE_MB


@dataclass
class EpisodeReport:
    bag: str
    frames: int = 0
    gap_ticks: int = 0
    duplicated_samples: int = 0
    jitter_ms: dict[str, float] = field(default_factory=dict)
    out_of_order: dict[str, int] = field(default_factory=dict)
    skipped: str = ""
    task: str = ""
    success: str = "unknown"


def find_bags(paths: list[Path]) -> list[Path]:
    bags: list[Path] = []
    for p in paths:
        p = Path(p)
        if (p / "metadata.yaml").is_file():
            bags.append(p)
        elif p.is_dir():
            bags.extend(sorted(m.parent for m in p.rglob("metadata.yaml")))
        else:
            raise ConversionError(f"{p} is neither a rosbag2 directory nor a directory of bags")
    if not bags:
        raise ConversionError(
            f"no rosbag2 bags (directories with metadata.yaml) under {[str(p) for p in paths]}"
        )
    return bags


def _stamp(msg, log_ns: int) -> float:
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec + header.stamp.nanosec * 1e-9
    return log_ns * 1e-9


def _image_rgb(msg, msgtype: str) -> np.ndarray:
    try:
        return compressed_to_rgb(msg) if msgtype.endswith("CompressedImage") else image_to_rgb(msg)
    except ImageError as exc:
        raise EpisodeSkipped(str(exc)) from exc


@dataclass
class Stream:
    times: list[float] = field(default_factory=list)
    values: list = field(default_factory=list)
    out_of_order: int = 0

    def add(self, t: float, v) -> None:
        if self.times and t < self.times[-1]:
            self.out_of_order += 1
        self.times.append(t)
        self.values.append(v)


def read_episode(bag: Path, cfg: ConvertConfig) -> tuple[dict[str, Stream], dict]:
    """Deserialise the configured topics of one bag into time-stamped streams."""
    wanted = {cfg.state_topic: "state", cfg.command_topic: "command", cfg.goal_topic: "goal"}
    wanted.update({topic: f"camera:{cam}" for cam, topic in cfg.cameras.items()})
    if cfg.action_topic:
        wanted[cfg.action_topic] = "action"
    streams: dict[str, Stream] = {}
    try:
        with AnyReader([bag]) as reader:
            info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
            custom = info.get("custom_data") or {}
            conns = [c for c in reader.connections if c.topic in wanted]
            for conn, log_ns, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                kind = wanted[conn.topic]
                t = _stamp(msg, log_ns)
                if kind == "state":
                    index = {n: i for i, n in enumerate(msg.name)}
                    missing = [n for n in cfg.joint_names if n not in index]
                    if missing:
                        raise EpisodeSkipped(
                            f"joint names differ: {cfg.state_topic} lacks {missing} (has {list(msg.name)})"
                        )
                    value = np.array([msg.position[index[n]] for n in cfg.joint_names], np.float64)
                    if not np.all(np.isfinite(value)):
                        raise EpisodeSkipped(f"non-finite joint positions in {cfg.state_topic} at t={t:.3f}")
                elif kind.startswith("camera:"):
                    value = raw, conn.msgtype  # decoded only at the ticks that use it
                elif kind == "action":
                    value = _trajectory(msg, cfg.joint_names, t)
                elif kind == "command":
                    value = msg.data
                else:
                    value = np.array([msg.point.x, msg.point.y, msg.point.z], np.float32)
                streams.setdefault(kind, Stream()).add(t, value)
    except EpisodeSkipped:
        raise
    except Exception as exc:  # rosbags raises many types for damaged files
        raise EpisodeSkipped(f"unreadable bag ({type(exc).__name__}: {exc})") from exc
    return streams, custom


def _trajectory(msg, joint_names: list[str], t: float):
    names = list(msg.joint_names)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    pos = np.full((len(msg.points), len(joint_names)), np.nan)
    for k, point in enumerate(msg.points):
        for j, name in enumerate(joint_names):
            if name in names:
                pos[k, j] = point.positions[names.index(name)]
    return times, pos


def _latest(stream: Stream, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the latest sample at or before each tick, and its age (s)."""
    times = np.asarray(stream.times)
    idx = np.searchsorted(times, ticks, side="right") - 1
    age = np.where(idx >= 0, ticks - times[np.maximum(idx, 0)], np.inf)
    return idx, age


def resample(streams: dict[str, Stream], custom: dict, cfg: ConvertConfig, report: EpisodeReport) -> dict:
    required = ["state", *(f"camera:{c}" for c in cfg.cameras)] + (["action"] if cfg.action_topic else [])
    topic_of = {"state": cfg.state_topic, "action": cfg.action_topic}
    topic_of.update({f"camera:{c}": t for c, t in cfg.cameras.items()})
    if not streams:
        raise EpisodeSkipped("empty episode: none of the configured topics has messages")
    missing = [topic_of[k] for k in required if k not in streams]
    if missing:
        raise EpisodeSkipped(f"missing topics {missing}")
    for key, s in streams.items():
        report.out_of_order[key] = s.out_of_order
        # Only the sampled streams must be in order; a sparse latched one (the goal) may mix
        # a message without a stamp (timed on arrival) with stamped ones, and is just sorted.
        if key in required and s.out_of_order > cfg.max_out_of_order * len(s.times):
            raise EpisodeSkipped(f"{s.out_of_order} out-of-order timestamps on {topic_of.get(key, key)}")
        if s.out_of_order:
            order = np.argsort(s.times, kind="stable")
            s.times = [s.times[i] for i in order]
            s.values = [s.values[i] for i in order]
    t0 = max(streams[k].times[0] for k in required)
    t1 = min(streams[k].times[-1] for k in required if k != "action")
    n = int(np.floor((t1 - t0) * cfg.fps + 1e-9)) + 1
    if n < 2:
        raise EpisodeSkipped(f"episode too short: {max(t1 - t0, 0):.2f} s of overlapping data")
    ticks = t0 + np.arange(n) / cfg.fps

    gaps = np.zeros(n, bool)
    idx_state, age = _latest(streams["state"], ticks)
    gaps |= age > cfg.max_gap
    states = np.array(streams["state"].values)[idx_state]
    images = {}
    for cam in cfg.cameras:
        s = streams[f"camera:{cam}"]
        idx, age = _latest(s, ticks)
        gaps |= age > cfg.max_gap
        report.duplicated_samples += int(n - len(np.unique(idx)))
        images[cam] = [s.values[i] for i in idx]
    for key, s in streams.items():
        if key in required and len(s.times) > 2:
            report.jitter_ms[key] = float(np.std(np.diff(s.times)) * 1000)
    report.gap_ticks = int(gaps.sum())
    if gaps.mean() > cfg.max_gap_fraction:
        raise EpisodeSkipped(f"{gaps.sum()} of {n} ticks have no sample within {cfg.max_gap} s")

    if cfg.action_topic:
        actions = _commanded(streams["action"], ticks + 1.0 / cfg.fps, states)
    else:
        actions = np.vstack([states[1:], states[-1:]])
    if not np.all(np.isfinite(actions)):
        raise EpisodeSkipped("non-finite commanded joint targets")
    goals = np.zeros((n, 3), np.float32)
    if "goal" in streams:
        idx, _ = _latest(streams["goal"], ticks)
        values = np.array(streams["goal"].values)
        goals[idx >= 0] = values[idx[idx >= 0]]
    task = custom.get("task") or (streams["command"].values[0] if "command" in streams else "")
    if not task:
        raise EpisodeSkipped(f"no task: neither episode metadata nor {cfg.command_topic} names one")
    report.task, report.success, report.frames = task, str(custom.get("success", "unknown")), n
    return {"state": states, "action": actions, "goal": goals, "images": images, "task": task}


def _commanded(stream: Stream, times: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Joint targets at ``times`` from the trajectory active at each time (JTC semantics).

    A trajectory starts from where the previous command stood at its start time and
    reaches its first point at that point's time_from_start; joints it does not name keep
    the previous command (or the state, before any command).
    """
    starts = np.asarray(stream.times)
    out = states.copy()

    def at(i: int, t: float, fallback: np.ndarray) -> np.ndarray:
        rel_times, pos = stream.values[i]
        rel = t - starts[i]
        # Before its first point a trajectory blends from the previous command (only then
        # do we look back, so the recursion stays shallow for streamed setpoints).
        prev = at(i - 1, starts[i], fallback) if i > 0 and rel < rel_times[0] else fallback
        value = prev.copy()
        for j in range(pos.shape[1]):
            col = pos[:, j]
            if np.isfinite(col).all():
                knots = np.concatenate([[0.0], rel_times])
                value[j] = np.interp(rel, knots, np.concatenate([[prev[j]], col]))
        return value

    for k, t in enumerate(times):
        i = np.searchsorted(starts, t, side="right") - 1
        if i >= 0:
            out[k] = at(i, t, states[k])
    return out


def convert(
    bags: list[Path], out: Path, cfg: ConvertConfig | None = None, progress: bool = True
) -> list[EpisodeReport]:
    """Convert ``bags`` into a LeRobot v3 dataset at ``out``; returns one report per bag."""
    cfg = cfg or ConvertConfig()
    if int(cfg.fps) != cfg.fps or cfg.fps <= 0:
        raise ConversionError(f"fps must be a positive integer (LeRobot v3 stores it as one), got {cfg.fps}")
    bags = find_bags(bags)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConversionError(f"output directory {out} is not empty")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    reports: list[EpisodeReport] = []
    writer = lerobot.LeRobotWriter(
        tmp,
        {STATE: list(cfg.joint_names), ACTION: list(cfg.joint_names), GOAL: ["x", "y", "z"]},
        [image_key(cam) for cam in cfg.cameras],
        lerobot.WriterConfig(
            fps=int(cfg.fps),
            data_files_size_in_mb=cfg.data_files_size_in_mb,
            video_files_size_in_mb=cfg.video_files_size_in_mb,
        ),
    )
    sizes: dict[str, tuple[int, int]] = {}
    for bag in tqdm(bags, desc="convert", unit="episode", disable=not progress):
        report = EpisodeReport(str(bag))
        reports.append(report)
        try:
            ep = resample(*read_episode(bag, cfg), cfg, report)
            frames = {cam: [_image_rgb(*_decode(raw)) for raw in raws] for cam, raws in ep["images"].items()}
        except EpisodeSkipped as exc:
            report.skipped = str(exc)
            tqdm.write(f"skipped {bag}: {exc}")
            continue
        videos = {}
        for cam, imgs in frames.items():
            # One size per camera: the configured one, else the first episode's.
            size = sizes.setdefault(cam, tuple(cfg.image_size or imgs[0].shape[:2]))
            videos[image_key(cam)] = [i if i.shape[:2] == size else resize_rgb(i, size) for i in imgs]
        vectors = {STATE: ep["state"], ACTION: ep["action"], GOAL: ep["goal"]}
        writer.add_episode(vectors, videos, ep["task"], {"success": report.success})
    if not writer.episodes:
        shutil.rmtree(tmp, ignore_errors=True)
        reasons = "; ".join(f"{Path(r.bag).name}: {r.skipped}" for r in reports)
        raise ConversionError(f"no episode could be converted ({reasons})")
    writer.finalize()
    (tmp / "meta" / "conversion_report.json").write_text(json.dumps([asdict(r) for r in reports], indent=2))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return reports


def _decode(value):
    raw, msgtype = value
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.LATEST).deserialize_cdr(raw, msgtype), msgtype
