"""Damped-least-squares inverse kinematics for the TCP site (position + gripper-down pose)."""

from __future__ import annotations

import mujoco
import numpy as np

# Tool x-axis points down, fingers open along world y.
DOWN = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # columns: tool x, y, z in world


class IK:
    """Solve joint positions that put the TCP at a point with the gripper pointing down.

    Works on its own MjData so it never disturbs the simulation.
    """

    def __init__(
        self, model: mujoco.MjModel, arm_qadr: np.ndarray, lower: np.ndarray, upper: np.ndarray
    ) -> None:
        self.model, self.data = model, mujoco.MjData(model)
        self.qadr, self.dofadr = arm_qadr, arm_qadr  # hinge joints: one dof each, before free joints
        self.lower, self.upper = lower, upper
        self.site = model.site("tcp_site").id
        self.jacp, self.jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def solve(
        self,
        target: np.ndarray,
        q0: np.ndarray,
        iters: int = 30,
        damping: float = 0.05,
        max_step: float = 0.2,
    ) -> np.ndarray:
        """q (6,) near q0 (6,) with the TCP at ``target`` (3,)."""
        q = q0.copy()
        for _ in range(iters):
            pos, rot = self.fk(q)
            err_p = target - pos
            err_r = 0.5 * sum(np.cross(rot[:, i], DOWN[:, i]) for i in range(3))
            err = np.concatenate([err_p, 0.5 * err_r])
            if np.linalg.norm(err_p) < 1e-4 and np.linalg.norm(err_r) < 1e-3:
                break
            mujoco.mj_jacSite(self.model, self.data, self.jacp, self.jacr, self.site)
            jac = np.vstack([self.jacp[:, self.dofadr], 0.5 * self.jacr[:, self.dofadr]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
            q = np.clip(q + np.clip(dq, -max_step, max_step), self.lower, self.upper)
        return q
