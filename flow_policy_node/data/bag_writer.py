"""Crash-safe rosbag2 episodes written with ``rosbags`` (no rclpy).

An episode is one standard rosbag2 directory (``metadata.yaml`` + storage files) that
``ros2 bag info/play`` and ``rosbags`` read. To lose at most ``roll_period`` seconds
when the process is killed, the writer splits the bag: every ``roll_period`` seconds the
current storage file is closed and a new one started, and ``metadata.yaml`` is rewritten
(atomically) to list the closed files, as rosbag2's own ``--max-bag-duration`` split
does. The file being written when the process dies is the only loss.

Messages arrive already serialized (CDR bytes from an rclpy ``raw=True`` subscription)
and are written as they are: nothing is deserialised.

Each topic carries the QoS its publishers offered, in rosbag2's format (a list of profiles
with history, depth, reliability, durability, deadline, lifespan, liveliness, lease
duration, namespace flag): in metadata.yaml as a YAML list (bag version 9), in the MCAP
channel metadata and the sqlite3 ``topics`` table as the YAML string rosbag2 writes there.
``ros2 bag play`` offers it again on replay, so a latched (transient-local) topic stays
latched and a best-effort camera stays best effort.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagWriteError(RuntimeError):
    """The episode cannot be written (unwritable directory, disk full, ...)."""


INFINITE = QosTime(sec=9223372036, nsec=854775807)  # RMW_DURATION_INFINITE, as rosbag2 writes it


def _enum(kind, value, unknown):
    try:
        return kind(int(value))
    except (TypeError, ValueError):
        return unknown


def _time(duration) -> QosTime:
    sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
    return QosTime(sec=sec, nsec=nsec)


def offered_qos(profile) -> Qos:
    """A publisher's offered QoS (an rclpy ``QoSProfile``, duck-typed) as rosbag2 records it.

    The graph reports history and depth as unknown / 0 (DDS discovery does not carry them);
    they are recorded as reported, as rosbag2 does, and replay picks its own depth.
    """
    return Qos(
        history=_enum(QosHistory, profile.history, QosHistory.UNKNOWN),
        depth=int(profile.depth),
        reliability=_enum(QosReliability, profile.reliability, QosReliability.UNKNOWN),
        durability=_enum(QosDurability, profile.durability, QosDurability.UNKNOWN),
        deadline=_time(profile.deadline),
        lifespan=_time(profile.lifespan),
        liveliness=_enum(QosLiveliness, profile.liveliness, QosLiveliness.UNKNOWN),
        liveliness_lease_duration=_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def latched_qos(offered: list[Qos]) -> list[Qos]:
    """The offers of a topic the bag holds latched: transient-local, so a replay latches it too.

    A topic with no known publisher gets rosbag2's latched default (keep last 1, reliable).
    """
    if not offered:
        return [
            Qos(
                QosHistory.KEEP_LAST,
                1,
                QosReliability.RELIABLE,
                QosDurability.TRANSIENT_LOCAL,
                INFINITE,
                INFINITE,
                QosLiveliness.AUTOMATIC,
                INFINITE,
                False,
            )
        ]
    return [q._replace(durability=QosDurability.TRANSIENT_LOCAL) for q in offered]


def make_typestore(msg_definitions: dict[str, str] | None = None):
    """A rosbags typestore with the standard ROS 2 types plus ``msg_definitions``.

    msg_definitions: type name (``pkg/msg/Name``) -> .msg text, for custom messages.
    """
    store = get_typestore(Stores.LATEST)
    for name, text in (msg_definitions or {}).items():
        if name not in store.fielddefs:
            store.register(get_types_from_msg(text, name))
    return store


def find_msg_definition(msgtype: str, prefixes: list[str]) -> str | None:
    """.msg text of ``pkg/msg/Name`` from an ament prefix (``share/pkg/msg/Name.msg``)."""
    pkg, _, name = msgtype.split("/")
    for prefix in prefixes:
        path = Path(prefix) / "share" / pkg / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text()
    return None


@dataclass
class EpisodeBag:
    path: Path
    storage: str = "mcap"
    roll_period: float = 1.0
    custom_data: dict[str, str] = field(default_factory=dict)
    typestore: object = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise BagWriteError(f"unknown storage {self.storage!r}; use mcap or sqlite3")
        self.typestore = self.typestore or make_typestore()
        self._topics: dict[str, tuple[str, list[Qos]]] = {}  # topic -> msgtype, offered QoS
        self._files: list[dict] = []
        self._part = 0
        self._writer: Writer | None = None
        self._connections: dict[str, object] = {}
        self._opened_at = 0.0
        try:
            self.path.mkdir(parents=True, exist_ok=False)
            probe = self.path / ".write_test"
            probe.write_bytes(b"x")
            probe.unlink()
        except OSError as exc:
            raise BagWriteError(f"cannot write episode to {self.path}: {exc.strerror or exc}") from exc

    def add_topic(self, topic: str, msgtype: str, offered: list[Qos] | None = None) -> None:
        """offered: the publishers' QoS profiles (see :func:`offered_qos`), recorded with the topic."""
        self._topics[topic] = (msgtype, list(offered or []))
        self.counts.setdefault(topic, 0)
        if self._writer is not None and topic not in self._connections:
            self._connections[topic] = self._connect(topic)

    def _connect(self, topic: str):
        msgtype, offered = self._topics[topic]
        return self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=offered
        )

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        try:
            if self._writer is None:
                self._open()
            elif time.monotonic() - self._opened_at >= self.roll_period:
                self._close_part()
                self._open()
            self._writer.write(self._connections[topic], timestamp_ns, data)
        except OSError as exc:
            raise BagWriteError(f"writing {self.path} failed: {exc.strerror or exc}") from exc
        self.counts[topic] += 1
        self._last_ns = timestamp_ns

    def roll_if_due(self) -> None:
        """Close the open file once it is ``roll_period`` old, even when no message comes."""
        if self._writer is not None and time.monotonic() - self._opened_at >= self.roll_period:
            try:
                self._close_part()
            except OSError as exc:
                raise BagWriteError(f"writing {self.path} failed: {exc.strerror or exc}") from exc

    def _open(self) -> None:
        tmp = self.path / f".part_{self._part:04d}"
        self._writer = Writer(tmp, version=9, storage_plugin=STORAGES[self.storage])
        self._writer.open()
        self._connections = {t: self._connect(t) for t in self._topics}
        self._opened_at = time.monotonic()

    def _close_part(self) -> None:
        if self._writer is None:
            return
        tmp = Path(self._writer.path)
        self._writer.close()
        self._writer = None
        meta = yaml.safe_load((tmp / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        suffix = ".mcap" if self.storage == "mcap" else ".db3"
        src = next(tmp.glob(f"*{suffix}"))
        name = f"{self.path.name}_{self._part}{suffix}"
        os.replace(src, self.path / name)
        shutil.rmtree(tmp)
        self._files.append({"name": name, "meta": meta})
        self._part += 1
        self._write_metadata()

    def _write_metadata(self) -> None:
        metas = [f["meta"] for f in self._files if f["meta"]["message_count"] > 0]
        topics: dict[str, dict] = {}
        for m in metas:
            for entry in m["topics_with_message_count"]:
                name = entry["topic_metadata"]["name"]
                if name in topics:
                    topics[name]["message_count"] += entry["message_count"]
                else:
                    topics[name] = {
                        "topic_metadata": entry["topic_metadata"],
                        "message_count": entry["message_count"],
                    }
        start = min((m["starting_time"]["nanoseconds_since_epoch"] for m in metas), default=0)
        end = max(
            (m["starting_time"]["nanoseconds_since_epoch"] + m["duration"]["nanoseconds"] for m in metas),
            default=0,
        )
        files = [f for f in self._files if f["meta"]["message_count"] > 0]
        info = {
            "version": 9,
            "storage_identifier": self.storage,
            "duration": {"nanoseconds": end - start},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": sum(m["message_count"] for m in metas),
            "topics_with_message_count": list(topics.values()),
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [f["name"] for f in files],
            "files": [
                {
                    "path": f["name"],
                    "starting_time": f["meta"]["starting_time"],
                    "duration": f["meta"]["duration"],
                    "message_count": f["meta"]["message_count"],
                }
                for f in files
            ],
            "custom_data": dict(self.custom_data),
            "ros_distro": os.environ.get("ROS_DISTRO", "kilted"),
        }
        tmp = self.path / ".metadata.yaml.tmp"
        tmp.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))
        os.replace(tmp, self.path / "metadata.yaml")

    def close(self) -> None:
        try:
            self._close_part()
            self._write_metadata()
        except OSError as exc:
            raise BagWriteError(f"closing {self.path} failed: {exc.strerror or exc}") from exc
