"""The one place that knows the arm's joints: names, order and limits.

Everything that turns joints into vectors (datasets, policies, nodes, the simulator)
uses :func:`default_arm` or an :class:`ArmSpec` loaded from a URDF, so that vector index
``i`` always means ``ArmSpec.joint_names[i]``. Incoming ``JointState`` messages are
reordered by name into this order, never used by index.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JointLimit:
    lower: float
    upper: float
    velocity: float  # rad/s (revolute) or m/s (prismatic)


@dataclass(frozen=True)
class ArmSpec:
    """Joint names in action/state order: the arm joints, then the gripper joint."""

    arm_joints: tuple[str, ...]
    gripper_joint: str
    limits: dict[str, JointLimit]

    @property
    def joint_names(self) -> tuple[str, ...]:
        return (*self.arm_joints, self.gripper_joint)

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    def lower(self) -> list[float]:
        return [self.limits[n].lower for n in self.joint_names]

    def upper(self) -> list[float]:
        return [self.limits[n].upper for n in self.joint_names]

    def max_velocity(self) -> list[float]:
        return [self.limits[n].velocity for n in self.joint_names]


def description_dir() -> Path:
    """Directory holding the arm's URDF: this source tree's, else the installed share dir."""
    source = Path(__file__).resolve().parent.parent / "description"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("flow_policy_node")) / "description"
    except (ImportError, LookupError, OSError) as exc:
        raise FileNotFoundError(
            "cannot find flow_policy_node's description/ directory: not in a source checkout and "
            f"the ament index does not know the package ({exc}); source your workspace's setup.bash"
        ) from exc


def default_urdf() -> Path:
    return description_dir() / "arm.urdf"


def load_arm(urdf: str | Path | None = None, gripper_joint: str = "gripper_finger_joint") -> ArmSpec:
    """Read joint names and limits from a URDF: movable joints in file order.

    Mimic joints (the second finger) are not commanded and are left out.
    """
    path = Path(urdf) if urdf is not None else default_urdf()
    root = ET.parse(path).getroot()
    arm: list[str] = []
    limits: dict[str, JointLimit] = {}
    for joint in root.iter("joint"):
        kind = joint.get("type")
        if kind not in ("revolute", "prismatic", "continuous") or joint.find("mimic") is not None:
            continue
        name = joint.get("name", "")
        lim = joint.find("limit")
        if lim is None:
            limits[name] = JointLimit(-math.pi, math.pi, math.pi)
        else:
            limits[name] = JointLimit(
                float(lim.get("lower", -math.pi)),
                float(lim.get("upper", math.pi)),
                float(lim.get("velocity", math.pi)),
            )
        if name != gripper_joint:
            arm.append(name)
    if gripper_joint not in limits:
        raise ValueError(f"{path}: no movable joint named {gripper_joint!r} (the gripper)")
    return ArmSpec(arm_joints=tuple(arm), gripper_joint=gripper_joint, limits=limits)


_DEFAULT: ArmSpec | None = None


def default_arm() -> ArmSpec:
    """The project's simulated arm, read once from ``description/arm.urdf``."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_arm()
    return _DEFAULT
