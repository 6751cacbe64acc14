"""ArmEnv: the MuJoCo arm with tasks, cameras and a control interface, without ROS.

Two ways to drive it:
- ``step(action)``: policy-style, one control period (1/fps s) towards the joint targets
  ``action`` (D,), interpolated linearly as a trajectory controller would;
- ``set_joint_targets(q)`` + ``advance(dt)``: fine-grained, for the ROS sim node, which
  interpolates JointTrajectory messages itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from flow_policy_node.observation import CAMERAS, FPS, IMAGE_SIZE, Observation
from flow_policy_node.robot import ArmSpec, default_arm
from flow_policy_node.sim.ik import IK
from flow_policy_node.sim.scene import HOME, Scene, apply_scene, build_model
from flow_policy_node.tasks import CUBE_COLOURS, CUBE_HALF, Layout, Task, get_task


@dataclass
class SimConfig:
    image_size: tuple[int, int] = IMAGE_SIZE  # (height, width)
    cameras: tuple[str, ...] = CAMERAS
    timestep: float = 0.002
    fps: float = FPS
    render: bool = True  # False: observations carry no images (fast expert runs)
    scene: Scene = field(default_factory=Scene)
    # > 0: each episode's scene is scene.randomized(amount), drawn from its seed (domain
    # randomisation for collecting demos); 0: every episode looks like ``scene``.
    randomize_scene: float = 0.0
    # > 0: that share of episodes gets a distractor of random colour and place (drawn from
    # the seed), the rest none; the scene is otherwise unchanged. 0: as the scene says.
    distractors: float = 0.0


@dataclass
class EpisodeState:
    task: Task
    seed: int
    layout: Layout
    touched_obstacle: bool = False
    succeeded_at: float | None = None
    cube_z0: dict[str, float] = field(default_factory=dict)


class ArmEnv:
    def __init__(self, config: SimConfig | None = None, arm: ArmSpec | None = None) -> None:
        self.config = config or SimConfig()
        self.arm = arm or default_arm()
        self.model = build_model(self.arm, timestep=self.config.timestep, scene=self.config.scene)
        self.data = mujoco.MjData(self.model)
        names = self.arm.joint_names
        self.qadr = np.array([self.model.joint(n).qposadr[0] for n in names])
        self.dofadr = np.array([self.model.joint(n).dofadr[0] for n in names])
        self.lower, self.upper = np.array(self.arm.lower()), np.array(self.arm.upper())
        self.ik = IK(self.model, self.qadr[:6], self.lower[:6], self.upper[:6])
        self.home = HOME.copy()
        self.home[:6] = self.ik.solve(np.array([0.3, 0.0, 0.25]), HOME[:6], iters=200)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._frames: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}  # last render per camera
        self._target = self.home.copy()
        self.state: EpisodeState | None = None
        self.scene = self.config.scene  # this episode's look
        self._obstacle_geom = self.model.geom("obstacle_geom").id
        self._arm_bodies = {self.model.body(n).id for n in ("link_3", "link_4", "link_5", "gripper_base")} | {
            self.model.body(n).id for n in ("finger_left", "finger_right")
        }

    # --- episode -----------------------------------------------------------------------

    def reset(self, task: str, seed: int) -> Observation:
        t = get_task(task)
        layout = t.sample_layout(seed)
        self._frames.clear()  # the layout may move what qpos does not hold (goal marker, obstacle)
        self.scene = self.config.scene
        rng = np.random.default_rng([seed, 4242])
        if self.config.randomize_scene > 0:
            self.scene = self.scene.randomized(rng, self.config.randomize_scene)
        if self.config.distractors > 0:
            self.scene = self.scene.with_random_distractor(rng, self.config.distractors)
        apply_scene(self.model, self.scene)
        now = self.data.time
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = now  # simulated time never runs backwards (it is the ROS clock)
        q = self.home + layout.start_offset
        start = t.start_tcp(layout)
        if start is not None:
            q[:6] = self.ik.solve(start, self.home[:6], iters=200)
        self.data.qpos[self.qadr] = q
        half = CUBE_HALF * self.scene.cube_scale  # the episode's scene, randomised or not
        for colour, xy in layout.cubes.items():
            adr = self.model.joint(f"cube_{colour}_free").qposadr[0]
            self.data.qpos[adr : adr + 7] = [xy[0], xy[1], half, 1, 0, 0, 0]
        self._place_mocap("obstacle", None if layout.obstacle is None else [*layout.obstacle, 0.06])
        self._place_mocap("goal", layout.goal)
        self._target = q.copy()
        self.data.ctrl[:] = q
        mujoco.mj_forward(self.model, self.data)
        self.state = EpisodeState(t, seed, layout)
        self.state.cube_z0 = {c: self.cube_position(c)[2] for c in CUBE_COLOURS}
        return self.observation()

    def _place_mocap(self, body: str, pos) -> None:
        mid = self.model.body(body).mocapid[0]
        self.data.mocap_pos[mid] = pos if pos is not None else [0.4, 0.0, -1.0]

    @property
    def task(self) -> Task:
        return self._require().task

    @property
    def command(self) -> str:
        return self.task.command

    @property
    def layout(self) -> Layout:
        return self._require().layout

    @property
    def goal(self) -> np.ndarray | None:
        return self.layout.goal

    @property
    def touched_obstacle(self) -> bool:
        return self._require().touched_obstacle

    @property
    def time(self) -> float:
        return float(self.data.time)

    def _require(self) -> EpisodeState:
        if self.state is None:
            raise RuntimeError("call reset(task, seed) first")
        return self.state

    # --- control -----------------------------------------------------------------------

    def set_joint_targets(self, q: np.ndarray) -> None:
        self._target = np.clip(np.asarray(q, dtype=float), self.lower, self.upper)
        self.data.ctrl[:] = self._target

    def advance(self, dt: float) -> None:
        for _ in range(max(1, round(dt / self.model.opt.timestep))):
            mujoco.mj_step(self.model, self.data)
            self._check_contacts()
        self._update_success()

    def step(self, action: np.ndarray) -> Observation:
        """Move towards joint targets ``action`` (D,) over one control period."""
        start, goal = self._target.copy(), np.clip(np.asarray(action, float), self.lower, self.upper)
        n = max(1, round(1.0 / self.config.fps / self.model.opt.timestep))
        for i in range(1, n + 1):
            self.data.ctrl[:] = start + (goal - start) * (i / n)
            mujoco.mj_step(self.model, self.data)
            self._check_contacts()
        self._target = goal
        self._update_success()
        return self.observation()

    def _check_contacts(self) -> None:
        st = self.state
        if st is None or st.layout.obstacle is None or st.touched_obstacle:
            return
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            if self._obstacle_geom in (c.geom1, c.geom2):
                other = c.geom2 if c.geom1 == self._obstacle_geom else c.geom1
                if self.model.geom_bodyid[other] in self._arm_bodies:
                    st.touched_obstacle = True

    # --- state -------------------------------------------------------------------------

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.qadr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.dofadr].copy()

    def joint_targets(self) -> np.ndarray:
        return self._target.copy()

    def tcp_position(self) -> np.ndarray:
        return self.data.site("tcp_site").xpos.copy()

    def cube_position(self, colour: str) -> np.ndarray:
        return self.data.body(f"cube_{colour}").xpos.copy()

    def cube_lift(self, colour: str) -> float:
        return float(self.cube_position(colour)[2] - self._require().cube_z0[colour])

    def object_positions(self) -> dict[str, np.ndarray]:
        out = {f"cube_{c}": self.cube_position(c) for c in CUBE_COLOURS}
        st = self._require()
        if st.layout.obstacle is not None:
            out["obstacle"] = np.array([*st.layout.obstacle, 0.06])
        if st.layout.goal is not None:
            out["goal"] = st.layout.goal.copy()
        return out

    def render(self, camera: str, size: tuple[int, int] | None = None) -> np.ndarray:
        """(h, w, 3) uint8 from ``camera`` (at ``size``, default the config's); the same frame
        again while nothing has moved.

        A scene at rest (the arm holding, cubes still) looks the same, and software GL costs
        milliseconds per frame: re-rendering it kept an idle sim node at 15-20% of a core.
        """
        h, w = size or self.config.image_size
        key = (camera, h, w)
        pose = np.concatenate([self.data.qpos, self.data.mocap_pos.ravel()])
        cached = self._frames.get(key)
        # 10 um / 10 urad since the last render: far below a pixel at any camera size here.
        if cached is not None and np.max(np.abs(cached[0] - pose)) < 1e-5:
            return cached[1].copy()
        renderer = self._renderers.get((h, w))
        if renderer is None:
            renderer = self._renderers[(h, w)] = mujoco.Renderer(self.model, h, w)
        renderer.update_scene(self.data, camera=camera)
        frame = renderer.render().copy()
        self._frames[key] = (pose.copy(), frame)
        return frame.copy()

    def observation(self) -> Observation:
        images = {cam: self.render(cam) for cam in self.config.cameras} if self.config.render else {}
        return Observation(
            state=self.joint_positions().astype(np.float32),
            images=images,
            task=self.command,
            goal=None if self.goal is None else self.goal.astype(np.float32),
            stamp=self.time,
        )

    def _update_success(self) -> None:
        st = self.state
        if st is None or st.succeeded_at is not None:
            return
        if not st.task.spoiled(self) and st.task.achieved(self):
            st.succeeded_at = self.time

    def success(self) -> bool:
        """True once the task has been achieved in this episode and not spoiled since."""
        st = self._require()
        return st.succeeded_at is not None and not st.task.spoiled(self)

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
