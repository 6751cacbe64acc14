"""Forward kinematics of a URDF in numpy: where a link is for given joint positions.

Enough for the policy node's predicted-path markers: serial chains of fixed, revolute,
continuous and prismatic joints with ``origin xyz/rpy`` and ``axis``, mimic joints
following their leader. No rclpy, no external kinematics library.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flow_policy_node.robot import default_urdf


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF fixed-axis roll-pitch-yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (
        np.cos(roll),
        np.sin(roll),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(yaw),
        np.sin(yaw),
    )
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations about unit ``axis`` by ``angle`` (N,) (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1 - c) * (k @ k)[None]


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    kind: str
    parent: str
    child: str
    xyz: np.ndarray
    rot: np.ndarray  # (3, 3) from rpy
    axis: np.ndarray
    mimic: tuple[str, float, float] | None  # (leader, multiplier, offset)


class Kinematics:
    """FK from the URDF's root link to any link along its chain."""

    def __init__(self, urdf: str | Path | None = None) -> None:
        root = ET.parse(Path(urdf) if urdf is not None else default_urdf()).getroot()
        self.joints: dict[str, UrdfJoint] = {}  # by child link
        for j in root.findall("joint"):  # direct children: <ros2_control> has <joint> too
            origin = j.find("origin")
            xyz = np.array(
                [float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split()]
            )
            rpy = [float(v) for v in (origin.get("rpy", "0 0 0") if origin is not None else "0 0 0").split()]
            axis_el = j.find("axis")
            axis = np.array(
                [float(v) for v in (axis_el.get("xyz") if axis_el is not None else "1 0 0").split()]
            )
            mimic_el = j.find("mimic")
            mimic = None
            if mimic_el is not None:
                mimic = (
                    mimic_el.get("joint", ""),
                    float(mimic_el.get("multiplier", 1)),
                    float(mimic_el.get("offset", 0)),
                )
            child = j.find("child").get("link")
            self.joints[child] = UrdfJoint(
                j.get("name", ""),
                j.get("type", "fixed"),
                j.find("parent").get("link"),
                child,
                xyz,
                rpy_matrix(*rpy),
                axis / np.linalg.norm(axis),
                mimic,
            )

    def chain(self, link: str) -> list[UrdfJoint]:
        """Joints from the root to ``link``, root first."""
        if link not in self.joints and link not in {j.parent for j in self.joints.values()}:
            raise KeyError(f"URDF has no link {link!r}")
        out = []
        while link in self.joints:
            out.append(self.joints[link])
            link = self.joints[link].parent
        return out[::-1]

    def positions(self, q: np.ndarray, joint_names: Sequence[str], link: str = "tcp") -> np.ndarray:
        """(N, 3) positions of ``link`` in the root frame for joint vectors ``q`` (N, D) or (D,)."""
        q = np.atleast_2d(np.asarray(q, np.float64))
        index = {n: i for i, n in enumerate(joint_names)}
        n = len(q)
        rot = np.repeat(np.eye(3)[None], n, axis=0)
        pos = np.zeros((n, 3))
        for j in self.chain(link):
            pos = pos + rot @ j.xyz
            rot = rot @ j.rot
            if j.kind == "fixed":
                continue
            leader, mult, off = j.mimic if j.mimic else (j.name, 1.0, 0.0)
            if leader not in index:
                raise KeyError(
                    f"joint {leader!r} (on the chain to {link!r}) is not among {list(joint_names)}"
                )
            value = q[:, index[leader]] * mult + off
            if j.kind == "prismatic":
                pos = pos + (rot @ j.axis) * value[:, None]
            else:
                rot = rot @ axis_angle(j.axis, value)
        return pos
