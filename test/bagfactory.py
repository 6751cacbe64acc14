"""Write rosbag2 episodes directly with rosbags, as `ros2 bag record` would (test helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TS = get_typestore(Stores.LATEST)
EMPTY = np.zeros(0, np.float64)
JOINTS = ["joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6", "gripper_finger_joint"]


def _stamp(t: float):
    sec, ns = divmod(round(t * 1e9), 1_000_000_000)
    return TS.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=ns)


def _header(t: float):
    return TS.types["std_msgs/msg/Header"](stamp=_stamp(t), frame_id="")


def state_at(t: float) -> np.ndarray:
    return np.array([0.1 * t + 0.01 * j for j in range(7)])


def image_at(t: float) -> np.ndarray:
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :, 0] = int(t * 40) % 256  # red channel encodes time
    img[8:24, 8:24, 1] = 200
    return img


def write_episode(
    path: Path,
    seconds: float = 3.0,
    storage: str = "mcap",
    joints: list[str] = JOINTS,
    nan_at: float | None = None,
    shuffle_stamps: bool = False,
    drop_topics: tuple[str, ...] = (),
    task: str = "pick up the red cube",
) -> None:
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    JS, Img = TS.types["sensor_msgs/msg/JointState"], TS.types["sensor_msgs/msg/Image"]
    Traj, Pt = (
        TS.types["trajectory_msgs/msg/JointTrajectory"],
        TS.types["trajectory_msgs/msg/JointTrajectoryPoint"],
    )
    Str, Dur = TS.types["std_msgs/msg/String"], TS.types["builtin_interfaces/msg/Duration"]
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conns = {
            "/joint_states": w.add_connection("/joint_states", JS.__msgtype__, typestore=TS),
            "/camera/front/image_raw": w.add_connection(
                "/camera/front/image_raw", Img.__msgtype__, typestore=TS
            ),
            "/camera/wrist/image_raw": w.add_connection(
                "/camera/wrist/image_raw", Img.__msgtype__, typestore=TS
            ),
            "/arm_controller/joint_trajectory": w.add_connection(
                "/arm_controller/joint_trajectory", Traj.__msgtype__, typestore=TS
            ),
            "/flow_policy/command": w.add_connection("/flow_policy/command", Str.__msgtype__, typestore=TS),
        }

        def put(topic: str, t: float, msg) -> None:
            if topic not in drop_topics:
                w.write(conns[topic], round(t * 1e9), TS.serialize_cdr(msg, msg.__msgtype__))

        t0 = 100.0
        put("/flow_policy/command", t0, Str(data=task))
        stamps = [t0 + k * 0.01 for k in range(int(seconds * 100))]
        if shuffle_stamps:
            stamps[50:60] = stamps[50:60][::-1]
        for k, t in enumerate(stamps):  # log times stay in order; header stamps may not
            pos = state_at(t - t0)
            if nan_at is not None and abs(t - t0 - nan_at) < 0.005:
                pos[2] = np.nan
            msg = JS(header=_header(t), name=joints, position=pos, velocity=EMPTY, effort=EMPTY)
            put("/joint_states", t0 + k * 0.01, msg)
        for k in range(int(seconds * 30)):
            t = t0 + k / 30
            for cam in ("front", "wrist"):
                img = image_at(t - t0)
                msg = Img(
                    header=_header(t),
                    height=32,
                    width=32,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=96,
                    data=img.reshape(-1),
                )
                put(f"/camera/{cam}/image_raw", t, msg)
        for k in range(int(seconds * 10)):
            t = t0 + k / 10
            point = Pt(
                positions=state_at(t - t0 + 0.1),
                velocities=EMPTY,
                accelerations=EMPTY,
                effort=EMPTY,
                time_from_start=Dur(sec=0, nanosec=100_000_000),
            )
            put(
                "/arm_controller/joint_trajectory",
                t,
                Traj(header=_header(t), joint_names=JOINTS, points=[point]),
            )
