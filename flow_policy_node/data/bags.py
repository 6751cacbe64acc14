"""rosbag2 episodes read with ``rosbags`` (no rclpy): the configured topics as time-stamped streams.

Time base: a message's header stamp when it has one that is non-zero, else the bag's
log (receive) time. Header stamps are what the robot measured; log times include
transport delay.

An episode's streams are keyed by the part a topic plays: ``state`` (joint positions in
:attr:`BagTopics.joint_names` order), ``camera:<name>`` (:class:`RawImage`, decoded only
when asked), ``action`` (:class:`Trajectory`), ``command`` (str) and ``goal`` (a point).
Only topics that have messages get a stream. Samples are kept in bag (receive) order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from flow_policy_node import names
from flow_policy_node.images import ImageError, compressed_to_rgb, image_to_rgb
from flow_policy_node.names import absolute
from flow_policy_node.robot import default_arm

STATE, ACTION, COMMAND, GOAL = "state", "action", "command", "goal"


def camera_stream(name: str) -> str:
    return f"camera:{name}"


class ConversionError(ValueError):
    """The input as a whole cannot be converted; the text says why."""


class EpisodeSkipped(Exception):
    """One episode cannot be converted; the text says why."""


@dataclass
class BagTopics:
    """Which topic plays which part, and the joint order to read joint vectors in."""

    # Fully qualified, as a bag recorded in the root namespace names its topics.
    state_topic: str = absolute(names.JOINT_STATES)
    cameras: dict[str, str] = field(
        default_factory=lambda: {c: absolute(names.camera_topic(c)) for c in ("front", "wrist")}
    )
    action_topic: str | None = absolute(names.TRAJECTORY)  # None: no commanded trajectory
    command_topic: str = absolute(names.COMMAND)
    goal_topic: str = absolute(names.GOAL)
    joint_names: list[str] = field(default_factory=lambda: list(default_arm().joint_names))

    def topic_of(self, stream: str) -> str:
        """The topic behind a stream key (for messages)."""
        if stream.startswith("camera:"):
            return self.cameras[stream.removeprefix("camera:")]
        topics = {
            STATE: self.state_topic,
            ACTION: self.action_topic,
            COMMAND: self.command_topic,
            GOAL: self.goal_topic,
        }
        return str(topics[stream])


@dataclass
class Trajectory:
    """A JointTrajectory in the robot's joint order: points at ``times`` (N,) s from its
    start, ``positions`` (N, D) with NaN columns for joints it does not name."""

    times: np.ndarray
    positions: np.ndarray


@dataclass
class RawImage:
    """An Image or CompressedImage message as recorded (CDR), decoded by :meth:`rgb`."""

    data: Any  # the serialised message (bytes or memoryview)
    msgtype: str

    def rgb(self) -> np.ndarray:
        """(h, w, 3) uint8; an undecodable image skips the episode."""
        msg = _typestore().deserialize_cdr(self.data, self.msgtype)
        try:
            return compressed_to_rgb(msg) if self.msgtype.endswith("CompressedImage") else image_to_rgb(msg)
        except ImageError as exc:
            raise EpisodeSkipped(str(exc)) from exc


@cache
def _typestore():
    return get_typestore(Stores.LATEST)


T = TypeVar("T")


@dataclass
class Stream(Generic[T]):
    times: list[float] = field(default_factory=list)
    values: list[T] = field(default_factory=list)
    out_of_order: int = 0  # samples whose time is before the previous one's

    def add(self, t: float, v: T) -> None:
        if self.times and t < self.times[-1]:
            self.out_of_order += 1
        self.times.append(t)
        self.values.append(v)


@dataclass
class BagEpisode:
    streams: dict[str, Stream]  # stream key (see the module docstring) -> samples
    metadata: dict[str, Any]  # the bag's custom_data: the recorder's task and success


def find_bags(paths: list[Path]) -> list[Path]:
    """The rosbag2 directories among ``paths`` and under them."""
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


def read_episode(bag: Path, topics: BagTopics) -> BagEpisode:
    """Deserialise the configured topics of one bag into time-stamped streams."""
    wanted = {topics.state_topic: STATE, topics.command_topic: COMMAND, topics.goal_topic: GOAL}
    wanted.update({topic: camera_stream(cam) for cam, topic in topics.cameras.items()})
    if topics.action_topic:
        wanted[topics.action_topic] = ACTION
    streams: dict[str, Stream] = {}
    try:
        with AnyReader([bag]) as reader:
            info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
            custom = info.get("custom_data") or {}
            conns = [c for c in reader.connections if c.topic in wanted]
            for conn, log_ns, raw in reader.messages(connections=conns):
                kind = wanted[conn.topic]
                msg = reader.deserialize(raw, conn.msgtype)
                t = _stamp(msg, log_ns)
                if kind.startswith("camera:"):  # most of a bag's bytes: decoded only at the ticks used
                    value = RawImage(raw, conn.msgtype)
                else:
                    value = _value(kind, msg, topics, t)
                streams.setdefault(kind, Stream()).add(t, value)
    except EpisodeSkipped:
        raise
    except Exception as exc:  # rosbags raises many types for damaged files
        raise EpisodeSkipped(f"unreadable bag ({type(exc).__name__}: {exc})") from exc
    return BagEpisode(streams, custom)


def _value(kind: str, msg: Any, topics: BagTopics, t: float) -> Any:
    if kind == STATE:
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in topics.joint_names if n not in index]
        if missing:
            raise EpisodeSkipped(
                f"joint names differ: {topics.state_topic} lacks {missing} (has {list(msg.name)})"
            )
        value = np.array([msg.position[index[n]] for n in topics.joint_names], np.float64)
        if not np.all(np.isfinite(value)):
            raise EpisodeSkipped(f"non-finite joint positions in {topics.state_topic} at t={t:.3f}")
        return value
    if kind == ACTION:
        return _trajectory(msg, topics.joint_names)
    if kind == COMMAND:
        return msg.data
    return np.array([msg.point.x, msg.point.y, msg.point.z], np.float32)


def _stamp(msg: Any, log_ns: int) -> float:
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec + header.stamp.nanosec * 1e-9
    return log_ns * 1e-9


def _trajectory(msg: Any, joint_names: list[str]) -> Trajectory:
    names = list(msg.joint_names)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    pos = np.full((len(msg.points), len(joint_names)), np.nan)
    for j, name in enumerate(joint_names):
        if name in names:
            col = names.index(name)
            pos[:, j] = [point.positions[col] for point in msg.points]
    return Trajectory(times, pos)
