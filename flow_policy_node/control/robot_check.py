"""Load a checkpoint for a robot, or say exactly why it does not fit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from flow_policy_node.train.checkpoint import CheckpointError, load_policy, read_metadata


def robot_mismatches(
    meta: dict, model_cfg: dict, joint_names: Sequence[str], cameras: Sequence[str]
) -> list[str]:
    """What differs between a checkpoint (metadata.json, config.json) and the robot's config."""
    problems = []
    ck_joints = list(meta.get("joint_names", []))
    missing = [j for j in ck_joints if j not in joint_names]
    extra = [j for j in joint_names if j not in ck_joints]
    if missing or extra:
        problems.append(
            f"joint names differ: robot lacks {missing or 'none'}, checkpoint lacks {extra or 'none'} "
            f"(checkpoint {ck_joints}, robot {list(joint_names)})"
        )
    dim = model_cfg.get("action_dim")
    if dim is not None and dim != len(ck_joints):
        problems.append(
            f"action dimension {dim} does not match the checkpoint's {len(ck_joints)} joint names"
        )
    ck_cams = list(meta.get("cameras", []))
    lacking = [c for c in ck_cams if c not in cameras]
    if lacking:
        problems.append(
            f"cameras: the checkpoint needs {lacking} but the robot is configured with {list(cameras)} "
            "(set the parameters cameras and camera_topics)"
        )
    size = meta.get("image_size")
    if ck_cams and not (isinstance(size, list) and len(size) == 2 and all(int(v) > 0 for v in size)):
        problems.append(f"image size {size!r} in metadata.json is not [height, width]")
    return problems


def load_for_robot(path: str, joint_names: Sequence[str], cameras: Sequence[str], device: str = "cpu"):
    """The policy at ``path`` if it fits the robot; CheckpointError naming every mismatch otherwise."""
    if not path:
        raise CheckpointError(
            "no checkpoint configured: set the parameter checkpoint to a directory written by "
            "`flow-policy train` (model.safetensors, config.json, normalization.json, metadata.json)"
        )
    meta = read_metadata(path)  # raises for a missing directory or missing files, naming them
    try:
        model_cfg = json.loads((Path(path) / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}: config.json is not valid JSON ({exc})") from exc
    problems = robot_mismatches(meta, model_cfg, joint_names, cameras)
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match the robot: " + "; ".join(problems))
    return load_policy(path, device=device), meta
