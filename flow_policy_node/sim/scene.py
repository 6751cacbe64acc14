"""Build the MuJoCo model: the arm compiled from description/arm.urdf, plus the world.

Added around the URDF: table (z = 0 is its top, the arm base stands on it), three
coloured cubes with free joints, an obstacle post, a goal marker (visual only), lights,
a front camera and a wrist camera, a TCP site, and position actuators for the 7
commanded joints (the mimic finger follows through an equality constraint).

What a camera sees is a :class:`Scene` parameter (front camera pose, lighting, cube
shades and sizes, a distractor), so that evaluations can perturb it.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace
from pathlib import Path

import mujoco
import numpy as np

from flow_policy_node.robot import ArmSpec, default_arm, default_urdf
from flow_policy_node.tasks import CUBE_AREA, CUBE_COLOURS, CUBE_HALF

HOME = np.array([0.0, 0.35, 1.45, 0.0, 1.35, 0.0, 0.04])  # gripper down above the table
# Position servo gains per joint (arm joints, then the gripper finger).
KP = np.array([300, 300, 200, 60, 60, 30, 400.0])
DAMPING = np.array([30, 30, 20, 4, 4, 2, 20.0])


@dataclass(frozen=True)
class Scene:
    """The look of the world (not its task): where the front camera is, light, appearance.

    The front camera frames the workspace (cubes at x 0.32-0.5 m, y +-0.18 m) so that a 4 cm
    cube is ~7 pixels wide in a 96x96 image. :func:`apply_scene` sets a scene on a built
    model in place, so that every episode may look different without recompiling.
    """

    camera_pos: tuple[float, float, float] = (0.72, 0.0, 0.55)
    camera_target: tuple[float, float, float] = (0.40, 0.0, 0.04)
    camera_fovy: float = 50.0
    camera_roll_deg: float = 0.0  # about the viewing axis
    light: float = 1.0  # scale of the lights' diffuse intensity
    cube_shade: float = 0.0  # added to every cube's RGB (a different batch of paint)
    cube_scale: float = 1.0  # cube edge length relative to the default 4 cm
    distractor: bool = False  # a cylinder on the table, away from the cubes
    distractor_rgb: tuple[float, float, float] = (0.9, 0.8, 0.1)  # yellow: red and green at once
    distractor_xy: tuple[float, float] = (0.56, 0.2)

    def camera_xyaxes(self) -> list[float]:
        """MuJoCo's camera frame: x to the image's right, y up, looking along -z."""
        forward = np.subtract(self.camera_target, self.camera_pos)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        a = np.deg2rad(self.camera_roll_deg)
        right, up = np.cos(a) * right + np.sin(a) * up, -np.sin(a) * right + np.cos(a) * up
        return [*right.tolist(), *up.tolist()]

    def randomized(self, rng: np.random.Generator, amount: float = 1.0) -> Scene:
        """A nearby scene (domain randomisation), ``amount`` scaling every range: camera within
        4 cm, aimed within 3 cm and rolled within 3 degrees, light +-40%, cube paint +-0.08 and
        size +-10%, a distractor in half the scenes (of any hue but the cubes', anywhere on the
        table outside the cubes' area). The ranges reach the perturbations of sim/perturb.py
        (benchmarks/vision.py measures what training on them buys)."""

        def jitter(v: tuple[float, ...], scale: float) -> tuple[float, ...]:
            return tuple((np.asarray(v) + rng.uniform(-scale, scale, len(v)) * amount).tolist())

        return replace(
            self,
            camera_pos=jitter(self.camera_pos, 0.04),
            camera_target=jitter(self.camera_target, 0.03),
            camera_roll_deg=self.camera_roll_deg + rng.uniform(-3, 3) * amount,
            light=self.light * (1 + rng.uniform(-0.4, 0.4) * amount),
            cube_shade=self.cube_shade + rng.uniform(-0.08, 0.08) * amount,
            cube_scale=self.cube_scale * (1 + rng.uniform(-0.1, 0.1) * amount),
        ).with_random_distractor(rng, 0.5 * amount)

    def with_random_distractor(self, rng: np.random.Generator, chance: float) -> Scene:
        """This scene with, at ``chance``, a distractor of any hue but the cubes' (or a grey)
        anywhere on the table outside the cubes' area; otherwise with none."""
        return replace(
            self,
            distractor=bool(rng.random() < chance),
            distractor_rgb=_distractor_colour(rng),
            distractor_xy=_distractor_place(rng),
        )


def _distractor_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated colour at least 25 degrees of hue from every cube's, or a grey."""
    cube_hues = [colorsys.rgb_to_hsv(*rgba[:3])[0] for rgba in CUBE_COLOURS.values()]
    while True:
        hue = rng.random()
        if all(min(abs(hue - h), 1 - abs(hue - h)) > 25 / 360 for h in cube_hues):
            break
    if rng.random() < 0.2:  # white to black
        return (float(rng.uniform(0.1, 0.95)),) * 3
    return tuple(float(c) for c in colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)))


def _distractor_place(rng: np.random.Generator) -> tuple[float, float]:
    """A table spot around the cubes, at least 4 cm outside the area where they are placed."""
    (x0, y0), (x1, y1) = CUBE_AREA
    while True:
        x, y = rng.uniform(0.26, 0.62), rng.uniform(-0.26, 0.26)
        if not (x0 - 0.04 < x < x1 + 0.04 and y0 - 0.04 < y < y1 + 0.04):
            return float(x), float(y)


DISTRACTOR_HALF_HEIGHT = 0.03
LIGHT_DIFFUSE = (0.7, 0.4)
HIDDEN = (0.4, 0.0, -1.0)  # where mocap bodies wait under the table


def apply_scene(model: mujoco.MjModel, scene: Scene) -> None:
    """Set ``scene`` on ``model`` in place (call mj_forward after, as after any model edit)."""
    cam = model.camera("front")
    x, y = np.array(scene.camera_xyaxes()[:3]), np.array(scene.camera_xyaxes()[3:])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.stack([x, y, np.cross(x, y)], axis=1).ravel())
    cam.pos[:] = scene.camera_pos
    cam.quat[:] = quat
    cam.fovy[:] = scene.camera_fovy
    for i, diffuse in enumerate(LIGHT_DIFFUSE):
        model.light_diffuse[i] = diffuse * scene.light
    half = CUBE_HALF * scene.cube_scale
    for colour, rgba in CUBE_COLOURS.items():
        geom = model.geom(f"cube_{colour}_geom")
        geom.rgba[:3] = np.clip(np.add(rgba[:3], scene.cube_shade), 0, 1)
        geom.size[:] = half
        geom.rbound[:] = half * np.sqrt(3)
        model.geom_aabb[geom.id, 3:] = half
    model.geom("distractor_geom").rgba[:3] = scene.distractor_rgb
    model.body_pos[model.body("distractor").id] = (
        (*scene.distractor_xy, DISTRACTOR_HALF_HEIGHT) if scene.distractor else HIDDEN
    )


def build_model(
    arm: ArmSpec | None = None, urdf: Path | None = None, timestep: float = 0.002, scene: Scene | None = None
) -> mujoco.MjModel:
    arm = arm or default_arm()
    spec = mujoco.MjSpec.from_file(str(urdf or default_urdf()))
    spec.option.timestep = timestep
    # Stiff servos on light links: implicit damping keeps them stable at a 2 ms step.
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480
    spec.visual.quality.shadowsize = 0  # shadow maps cost ~60 ms a frame in software GL; 2.6 ms without
    world = spec.worldbody

    for body in spec.bodies:
        if body.name not in ("world",):
            body.gravcomp = 1.0  # the arm's controller compensates gravity, as real servos do
    for joint in spec.joints:
        if joint.name in arm.joint_names:
            joint.armature = 0.02  # reflected rotor inertia of geared motors
    for geom in spec.geoms:
        if geom.contype:
            geom.friction = [1.5, 0.02, 0.001]

    world.add_light(pos=[0.4, -0.5, 1.5], dir=[0, 0.3, -1], diffuse=[LIGHT_DIFFUSE[0]] * 3)
    world.add_light(pos=[0.8, 0.6, 1.2], dir=[-0.4, -0.4, -1], diffuse=[LIGHT_DIFFUSE[1]] * 3)
    table = world.add_body(name="table", pos=[0.35, 0, -0.02])
    table.add_geom(
        name="table_top", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.45, 0.45, 0.02], rgba=[0.8, 0.75, 0.65, 1]
    )

    for colour, rgba in CUBE_COLOURS.items():
        cube = world.add_body(name=f"cube_{colour}", pos=[0.4, 0, CUBE_HALF])
        cube.add_freejoint(name=f"cube_{colour}_free")
        cube.add_geom(
            name=f"cube_{colour}_geom",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[CUBE_HALF] * 3,
            rgba=list(rgba),
            mass=0.05,
            friction=[1.5, 0.02, 0.001],
        )
    # mocap: mj_resetData places it at body_pos, which apply_scene sets
    thing = world.add_body(name="distractor", pos=list(HIDDEN), mocap=True)
    thing.add_geom(
        name="distractor_geom",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.025, DISTRACTOR_HALF_HEIGHT, 0],
    )
    post = world.add_body(name="obstacle", pos=[0.42, 0, -1.0], mocap=True)
    post.add_geom(
        name="obstacle_geom",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.035, 0.06, 0],
        rgba=[0.4, 0.4, 0.45, 1],
    )
    goal = world.add_body(name="goal", pos=[0.4, 0, -1.0], mocap=True)
    goal.add_geom(
        name="goal_geom",
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        size=[0.015, 0, 0],
        rgba=[1.0, 0.85, 0.1, 0.9],
        contype=0,
        conaffinity=0,
    )

    tcp = spec.body("tcp")
    tcp.add_site(name="tcp_site", size=[0.005, 0, 0])
    world.add_camera(name="front")  # posed by apply_scene
    # Looking along the tool axis (the gripper's +x), fingers at the bottom of the image.
    spec.body("gripper_base").add_camera(
        name="wrist", pos=[-0.02, 0, 0.05], xyaxes=[0, -1, 0, 0.3, 0, 1], fovy=75
    )

    for name, kp, kv in zip(arm.joint_names, KP, DAMPING, strict=True):
        lim = arm.limits[name]
        act = spec.add_actuator(name=f"act_{name}", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, kv=kv)
        act.ctrlrange = [lim.lower, lim.upper]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-200, 200]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    model = spec.compile()
    apply_scene(model, scene or Scene())
    return model
