"""What the policy saw and did, drawn on its camera image.

For an episode (task, seed) the scene is reset as it began; on a large render of the
policy's first camera go: the gripper path the policy planned in its first chunk (cyan),
the path the arm then took (green: success, red: failure) and, for policies that find the
goal in the image, where the policy thinks the goal is (a yellow cross). A user sees at a
glance whether the policy looks at the right cube.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from flow_policy_node.sim.env import ArmEnv, SimConfig


@dataclass
class Shown:
    task: str
    seed: int
    success: bool
    joints: np.ndarray  # (T, D) the executed joint positions (may be empty)


def tcp_path(env: ArmEnv, joints: np.ndarray) -> np.ndarray:
    """(T, 3) TCP positions for joint positions (T, D), by forward kinematics on a scratch copy."""
    import mujoco

    data = mujoco.MjData(env.model)
    site = env.model.site("tcp_site").id
    out = []
    for q in np.asarray(joints):
        data.qpos[env.qadr] = q
        mujoco.mj_kinematics(env.model, data)
        out.append(data.site_xpos[site].copy())
    return np.array(out).reshape(-1, 3)


def project(env: ArmEnv, camera: str, points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 2) pixel coordinates (x right, y down) of world points (N, 3) in ``camera``."""
    cam = env.model.camera(camera).id
    pos, rot = env.data.cam_xpos[cam], env.data.cam_xmat[cam].reshape(3, 3)
    h, w = size
    f = 0.5 * h / np.tan(np.deg2rad(env.model.cam_fovy[cam]) / 2)
    local = (np.asarray(points) - pos) @ rot  # camera frame: x right, y up, looking along -z
    depth = np.maximum(-local[:, 2], 1e-6)
    return np.stack([w / 2 + f * local[:, 0] / depth, h / 2 - f * local[:, 1] / depth], axis=1)


def _fixed(points: np.ndarray, scale: int) -> np.ndarray:
    return np.round(points * scale).astype(np.int32)


def pick_examples(episodes: list[Shown], per_task: int = 4) -> list[Shown]:
    """Per task ``per_task`` episodes: up to half of them failures (shown first), then successes."""
    out = []
    for task in dict.fromkeys(e.task for e in episodes):
        failed = [e for e in episodes if e.task == task and not e.success][: max(1, per_task // 2)]
        succeeded = [e for e in episodes if e.task == task and e.success]
        out += failed + succeeded[: per_task - len(failed)]
    return out


def draw_episodes(policy, shown: list[Shown], png: Path, size: int = 224, columns: int = 4) -> None:
    """A grid of annotated first frames, one per episode in ``shown``."""
    camera = (policy.cfg.encoder.cameras or ("front",))[0]
    env = ArmEnv(SimConfig(cameras=tuple(policy.cfg.encoder.cameras) or (camera,)))
    tiles = []
    try:
        for ep in shown:
            obs = env.reset(ep.task, ep.seed)
            chunk = policy.predict(obs, seed=0)
            goal = policy.goal_point(obs)
            frame = np.ascontiguousarray(env.render(camera, (size, size))[:, :, ::-1])  # BGR for OpenCV
            scale = 4  # sub-pixel precision for cv2's integer coordinates
            plan = project(env, camera, tcp_path(env, np.vstack([obs.state[None], chunk])), (size, size))
            cv2.polylines(frame, [_fixed(plan, scale)], False, (255, 255, 0), 1, cv2.LINE_AA, 2)
            if len(ep.joints):
                done = project(env, camera, tcp_path(env, ep.joints), (size, size))
                colour = (60, 200, 60) if ep.success else (40, 40, 230)
                cv2.polylines(frame, [_fixed(done, scale)], False, colour, 1, cv2.LINE_AA, 2)
            if goal is not None:
                ((gx, gy),) = project(env, camera, goal[None], (size, size))
                cv2.drawMarker(frame, (round(gx), round(gy)), (0, 220, 255), cv2.MARKER_CROSS, 12, 2)
            label = f"{ep.task} s{ep.seed} {'ok' if ep.success else 'FAIL'}"
            cv2.rectangle(frame, (0, 0), (8 + 7 * len(label), 18), (255, 255, 255), -1)
            cv2.putText(frame, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
            tiles.append(frame)
    finally:
        env.close()
    if not tiles:
        return
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), np.vstack(rows))
