"""recorder_node: records episodes of the configured topics to rosbag2, losing nothing.

Subscriptions are generic and raw: any message type (custom ones included) is resolved
from the ROS graph and its serialized bytes go to the bag untouched; their QoS follows
the publishers' (best-effort cameras, latched goals), as rosbag2's does, and the
publishers' offered QoS is recorded with each topic in rosbag2's format, so ``ros2 bag
play`` offers it again. Latched topics (``latched_topics``, and any topic whose
publishers are all transient-local, e.g. /robot_description) are recorded as
transient-local, and their last message is written again at each episode start, stamped
with the start time: a bag never starts before its episode. A writer thread
does the I/O, so callbacks only enqueue; deep queues keep up with camera rates. Bags
are split every ``roll_period`` s (see data/bag_writer.py), so a killed recorder loses
at most that much. Episodes start and stop through recorder/start_episode and
recorder/stop_episode (or automatically on each command when ``auto_episodes`` is set);
a write error stops the episode and is reported, never skipped over.

Names are relative to the node's namespace: under ``/robot1`` the topic ``joint_states``
is ``/robot1/joint_states``, and bags name every topic fully qualified, as rosbag2 does.
Stamps come from the node's clock: simulated time with use_sim_time, else the wall clock
(a real arm publishes no /clock).
"""

from __future__ import annotations

import importlib
import os
import queue
import sys
import threading
import time
from pathlib import Path

from flow_policy_node import names
from flow_policy_node.ros.env import run_node_main, spin

CLOSE = object()  # queued by finish(): the writer thread closes the bag

DEFAULT_TOPICS = [
    names.JOINT_STATES,
    names.camera_topic("front"),
    names.camera_topic("wrist"),
    names.TRAJECTORY,
    names.COMMAND,
    names.GOAL,
    names.TASK_SUCCESS,
]


def recording_qos(publishers: list, depth: int):
    """rosbag2's rule: a subscription every publisher seen so far can serve.

    Reliable and volatile unless a publisher offers less: a best-effort camera driver
    needs a best-effort subscription, and only latched (transient-local) publishers
    everywhere allow a latched subscription (RViz's clicked points are volatile).
    """
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    offered = [p.qos_profile for p in publishers]
    best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        depth=depth,
        history=HistoryPolicy.KEEP_LAST,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _main(argv: list[str]) -> int:
    import rclpy
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from std_msgs.msg import String

    from flow_policy_msgs.srv import StartEpisode, StopEpisode
    from flow_policy_node.data.bag_writer import (
        BagWriteError,
        EpisodeBag,
        find_msg_definition,
        latched_qos,
        make_typestore,
        offered_qos,
    )
    from flow_policy_node.robot import default_arm

    class RecorderNode(Node):
        def __init__(self) -> None:
            super().__init__(names.RECORDER_NODE)
            p = self.declare_parameter
            self.out_dir = Path(p("output_dir", "bags").value).expanduser()
            self.storage = p("storage", "mcap").value
            self.topics = [self.resolve_topic_name(t) for t in p("topics", DEFAULT_TOPICS).value]
            self.roll_period = float(p("roll_period", 1.0).value)
            self.auto = bool(p("auto_episodes", False).value)
            self.command_topic = p("command_topic", names.COMMAND).value
            self.depth = int(p("queue_depth", 1000).value)
            self.joint_names = list(p("joint_names", list(default_arm().joint_names)).value)
            self.queue: queue.Queue = queue.Queue()
            self.lock = threading.Lock()
            self.bag: EpisodeBag | None = None
            self.episode_id = self._next_episode_id()
            self.error = ""
            self.subscribed: dict[str, str] = {}
            self.offered: dict[str, list] = {}  # topic -> the publishers' QoS, as the bag records it
            # Latched topics (a goal set before the episode, the last outcome) are written
            # again at each episode start, as rosbag2 does for transient-local topics.
            latched = p("latched_topics", [names.GOAL, names.TASK_SUCCESS]).value
            self.latched_topics = {self.resolve_topic_name(t) for t in latched}
            self.latched: dict[str, tuple[str, int, bytes]] = {}
            self.started_ns = 0  # system time of the episode's start
            self.typestore = make_typestore()
            self.create_service(StartEpisode, names.START_EPISODE, self.on_start)
            self.create_service(StopEpisode, names.STOP_EPISODE, self.on_stop)
            if self.auto:
                self.create_subscription(String, self.command_topic, self.on_command, 10)
            self.create_timer(0.2, self.discover)
            self.writer = threading.Thread(target=self.write_loop, daemon=True)
            self.writer.start()
            self.discover()
            self.get_logger().info(f"recording {self.topics} to {self.out_dir} ({self.storage})")

        def _next_episode_id(self) -> int:
            existing = [
                int(d.name.split("_")[-1]) for d in self.out_dir.glob("episode_*") if d.name[-1].isdigit()
            ]
            return max(existing, default=-1) + 1

        # --- subscriptions: resolve each topic's type from the graph, then subscribe raw ---

        def discover(self) -> None:
            known = dict(self.get_topic_names_and_types())
            for topic in self.topics:
                if topic in self.subscribed or topic not in known:
                    continue
                msgtype = known[topic][0]
                pkg, _, name = msgtype.split("/")
                try:
                    cls = getattr(importlib.import_module(f"{pkg}.msg"), name)
                except (ImportError, AttributeError):
                    self.get_logger().error(f"cannot record {topic}: message package {pkg} is not importable")
                    self.subscribed[topic] = msgtype
                    continue
                if msgtype not in self.typestore.fielddefs:
                    text = find_msg_definition(
                        msgtype, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
                    )
                    if text is None:
                        self.get_logger().error(f"cannot record {topic}: no definition of {msgtype} found")
                        self.subscribed[topic] = msgtype
                        continue
                    self.typestore = make_typestore({msgtype: text})
                publishers = self.get_publishers_info_by_topic(topic)
                qos = recording_qos(publishers, self.depth)
                offered = [offered_qos(p.qos_profile) for p in publishers]
                if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
                    self.latched_topics.add(topic)  # latched by its publishers: keep it per episode
                self.offered[topic] = latched_qos(offered) if topic in self.latched_topics else offered
                events = SubscriptionEventCallbacks(
                    incompatible_qos=lambda _e, t=topic: self.get_logger().error(
                        f"{t}: a publisher's QoS is incompatible with the recording's; its messages are lost"
                    )
                )
                self.create_subscription(
                    cls,
                    topic,
                    lambda data, info, t=topic: self.on_message(t, data, info["received_timestamp"]),
                    qos,
                    raw=True,
                    event_callbacks=events,
                )
                self.subscribed[topic] = msgtype
                with self.lock:
                    if self.bag is not None:
                        self.bag.add_topic(topic, msgtype, self.offered.get(topic))

        def on_message(self, topic: str, data: bytes, received_ns: int) -> None:
            """``received_ns``: when the middleware received it (system clock; 0: unknown)."""
            stamp = self.get_clock().now().nanoseconds
            if topic in self.latched_topics:
                self.latched[topic] = (topic, stamp, data)
            # Between episodes messages are taken in batches (see ros/env.py spin): one that
            # arrived before the start but is taken after it is not part of the episode.
            if self.bag is not None and received_ns >= self.started_ns:
                self.queue.put((topic, stamp, data))

        def on_command(self, msg) -> None:
            with self.lock:
                active = self.bag is not None
            if active:
                self.finish(success=False)
            self.start(msg.data)

        # --- episodes --------------------------------------------------------------------

        def start(self, task: str) -> tuple[bool, str]:
            self.discover()  # topics that appeared since the last timer tick are in from the start
            with self.lock:
                if self.bag is not None:
                    return False, f"episode {self.episode_id} is still recording; stop it first"
                path = self.out_dir / f"episode_{self.episode_id:04d}"
                try:
                    self.out_dir.mkdir(parents=True, exist_ok=True)
                    bag = EpisodeBag(
                        path,
                        self.storage,
                        self.roll_period,
                        custom_data={
                            "task": task,
                            "joint_names": ",".join(self.joint_names),
                            "success": "unknown",
                        },
                        typestore=self.typestore,
                    )
                except (BagWriteError, OSError) as exc:
                    self.get_logger().error(str(exc))
                    return False, str(exc)
                for topic, msgtype in self.subscribed.items():
                    bag.add_topic(topic, msgtype, self.offered.get(topic))
                self.error = ""
                self.started_ns = time.time_ns()
                self.bag = bag
                # A latched message received before the episode is part of its starting
                # state: written at the start time, not when it arrived (which may be long
                # before), so the bag's starting_time is the episode's.
                started = self.get_clock().now().nanoseconds
                for topic, _received, data in self.latched.values():
                    self.queue.put((topic, started, data))
            self.get_logger().info(f"episode {self.episode_id} started: {task!r} -> {path}")
            return True, str(path)

        def finish(self, success: bool, discard: bool = False) -> tuple[bool, str, object]:
            with self.lock:
                bag = self.bag
            if bag is None:
                return False, "no episode is recording", None
            self.queue.join()  # everything received so far is in the bag
            with self.lock:
                self.bag = None
            bag.custom_data["success"] = str(bool(success)).lower()
            # Closed by the writer thread, which opened its files: sqlite3 connections may
            # only be used by the thread that created them.
            self.queue.put((CLOSE, bag, None))
            self.queue.join()
            if discard:
                import shutil

                shutil.rmtree(bag.path, ignore_errors=True)
            ok = not self.error
            msg = self.error or f"episode {self.episode_id} saved: {sum(bag.counts.values())} messages"
            (self.get_logger().info if ok else self.get_logger().error)(msg)
            self.episode_id += 1
            return ok, msg, bag

        def on_start(self, request, response):
            response.success, message = self.start(request.task)
            response.message = message
            response.episode_id = self.episode_id
            response.bag_path = message if response.success else ""
            return response

        def on_stop(self, request, response):
            episode = self.episode_id
            response.ok, response.message, bag = self.finish(request.success, request.discard)
            response.episode_id = episode
            if bag is not None:
                response.bag_path = str(bag.path)
                response.topics = list(bag.counts)
                response.message_counts = list(bag.counts.values())
            return response

        def write_loop(self) -> None:
            while True:
                try:
                    item = self.queue.get(timeout=0.2)
                except queue.Empty:
                    # Quiet topics: still close the open file on time (bounded loss on a kill).
                    with self.lock:
                        try:
                            if self.bag is not None and not self.error:
                                self.bag.roll_if_due()
                        except BagWriteError as exc:
                            self.error = f"episode {self.episode_id} stopped: {exc}"
                            self.get_logger().error(self.error)
                    continue
                try:
                    if item[0] is CLOSE:
                        item[1].close()  # the bag finish() hands over
                        continue
                    topic, stamp, data = item
                    with self.lock:
                        bag = self.bag
                    if bag is not None and not self.error:
                        bag.write(topic, stamp, data)
                except BagWriteError as exc:
                    self.error = f"episode {self.episode_id} stopped: {exc}"
                    self.get_logger().error(self.error)
                except Exception as exc:  # the thread must live on: finish() waits for it
                    self.error = f"episode {self.episode_id} stopped: {type(exc).__name__}: {exc}"
                    self.get_logger().error(self.error)
                finally:
                    self.queue.task_done()

        def shutdown(self) -> None:
            if self.bag is not None:
                self.finish(success=False)

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = RecorderNode()
    spin(node, SingleThreadedExecutor(), node.shutdown, idle=lambda: node.bag is None)
    return 0


def main() -> int:
    return run_node_main(_main)


if __name__ == "__main__":
    sys.exit(main())
