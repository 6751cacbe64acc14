"""Issue 4: the embedded simulator, its tasks, the scripted expert and the evaluator."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from flow_policy_node.observation import Observation
from flow_policy_node.robot import default_arm, default_urdf, description_dir
from flow_policy_node.sim.env import ArmEnv, SimConfig
from flow_policy_node.sim.evaluate import EvalConfig, evaluate, rms_jerk, write_report
from flow_policy_node.sim.expert import ScriptedExpert, run_expert_episode
from flow_policy_node.tasks import TASKS


@pytest.fixture(scope="module")
def env():
    e = ArmEnv(SimConfig(render=False))
    yield e
    e.close()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_expert_solves_every_task(env: ArmEnv, task: str) -> None:
    results = [run_expert_episode(env, task, seed) for seed in range(50)]
    assert sum(r.success for r in results) >= 45, [r.seed for r in results if not r.success]
    if task == "obstacle":
        front = sum(r.side == 1 for r in results)
        assert 0.35 * 50 <= front <= 0.65 * 50, front


def test_expert_motion_is_smooth_and_varies_between_seeds(env: ArmEnv) -> None:
    a, b = run_expert_episode(env, "pick_red", 1), run_expert_episode(env, "pick_red", 2)
    assert not np.allclose(a.actions[:10], b.actions[:10])
    # Joint steps per 0.1 s stay well under the velocity limits (2 rad/s -> 0.2 rad).
    assert np.abs(np.diff(a.actions[:, :6], axis=0)).max() < 0.15


def test_obstacle_touch_fails_the_task(env: ArmEnv) -> None:
    env.reset("obstacle", 0)
    post = env.state.layout.obstacle
    # Drive straight through the post: the averaged path the regression baseline would take.
    q = env.joint_targets()
    for s in np.linspace(0, 1, 30):
        tcp = np.array([0.42, post[1] - 0.18 + s * 0.36, 0.07])
        q = np.append(env.ik.solve(tcp, q[:6]), 0.04)
        env.step(q)
    assert env.state.touched_obstacle
    assert not env.success()


def test_pick_success_requires_the_named_cube(env: ArmEnv) -> None:
    run_expert_episode(env, "pick_green", 3)
    assert env.success()
    lifts = {c: env.cube_position(c)[2] for c in ("red", "green", "blue")}
    assert lifts["green"] > 0.06 and lifts["red"] < 0.03 and lifts["blue"] < 0.03


def test_rendering_gives_camera_images() -> None:
    env = ArmEnv(SimConfig(image_size=(64, 80)))
    try:
        obs = env.reset("pick_red", 0)
        assert set(obs.images) == {"front", "wrist"}
        for img in obs.images.values():
            assert img.shape == (64, 80, 3) and img.dtype == np.uint8
            assert img.std() > 5  # a real picture, not a blank frame
        # The red cube shows up red in the front camera.
        front = obs.images["front"].astype(int)
        assert ((front[..., 0] > 150) & (front[..., 1] < 80) & (front[..., 2] < 80)).sum() > 3
    finally:
        env.close()


class ExpertReplay:
    """The scripted expert behind the Policy interface: predicts its next H targets."""

    horizon, fps = 8, 10.0

    def __init__(self, env: ArmEnv) -> None:
        self.env, self.expert, self.seed = env, None, -1

    def predict(self, obs: Observation, *, prefix=None, seed=None) -> np.ndarray:
        if self.expert is None or self.env.state.seed != self.seed:
            self.expert, self.seed = ScriptedExpert(self.env, self.env.state.seed), self.env.state.seed
        return np.array([self.expert.act() for _ in range(self.horizon)], np.float32)


class GoTo:
    """A policy that always plans to hold ``goal`` (D,), recording the prefixes it is given."""

    horizon, fps = 16, 10.0

    def __init__(self, goal: np.ndarray) -> None:
        self.goal, self.prefixes = goal, []

    def predict(self, obs: Observation, *, prefix=None, seed=None) -> np.ndarray:
        self.prefixes.append(None if prefix is None else np.array(prefix))
        return np.tile(self.goal, (self.horizon, 1)).astype(np.float32)


def test_chunked_evaluation_runs_the_nodes_scheduler_with_the_delay_in_simulated_time() -> None:
    from flow_policy_node.control.chunking import ChunkingConfig

    env = ArmEnv(SimConfig(render=False))
    arm = default_arm()
    start = env.reset("reach", 1000).state
    goal = start.copy()
    goal[0] += 0.8  # far enough that the velocity limit shapes the motion
    policy = GoTo(goal)
    cfg = EvalConfig(
        tasks=("reach",), episodes=1, max_seconds=3.0, chunking=ChunkingConfig("rtc"), delay_ms=250
    )
    (episode,) = evaluate(policy, cfg, progress=False, env=env)["reach"].episodes
    q = np.array(episode.joints)
    assert len(q) == 31  # 3 s at 10 Hz, and the start
    # The first chunk exists only 250 ms after its observation: the arm holds until then.
    assert np.abs(q[:3, 0] - q[0, 0]).max() < 1e-3 and q[8, 0] > q[0, 0] + 0.1
    # The node's safety limits apply: the target moves at most max velocity x dt per step.
    assert q[-1, 0] - q[0, 0] < arm.max_velocity()[0] * 3.0 + 1e-3
    # rtc: after the first chunk the policy is given the plan committed over the delay (3 steps)
    # and the margin (4 steps).
    assert policy.prefixes[0] is None and all(p is not None and len(p) == 3 + 4 for p in policy.prefixes[1:])
    # A chunk every 4 steps (the execution horizon), not every step.
    assert 6 <= len(policy.prefixes) <= 9, len(policy.prefixes)


def test_evaluator_reports_success_jerk_and_latency(tmp_path) -> None:
    env = ArmEnv(SimConfig(render=False))
    reports = evaluate(ExpertReplay(env), EvalConfig(tasks=("reach",), episodes=3), progress=False, env=env)
    rep = reports["reach"]
    assert rep.success_rate == 1.0
    # Measured from each episode's start (the sim clock runs on across episodes).
    assert all(0.5 < ep.time_to_success < 4.0 for ep in rep.episodes), [
        ep.time_to_success for ep in rep.episodes
    ]
    assert 0 < rep.rms_jerk < 1e3
    write_report(reports, tmp_path, 10.0)
    assert (tmp_path / "trajectories.png").stat().st_size > 1000
    assert "reach" in (tmp_path / "eval.json").read_text()


def test_rms_jerk_of_a_cubic_is_constant() -> None:
    t = np.arange(50)[:, None] * 0.1
    q = np.repeat(t**3, 7, axis=1)
    assert rms_jerk(q, 0.1) == pytest.approx(6.0, rel=1e-6)


def test_one_description_for_urdf_gazebo_and_robot_spec() -> None:
    arm = default_arm()
    root = ET.parse(default_urdf()).getroot()
    control = root.find("ros2_control")
    assert control is not None
    commanded = [j.get("name") for j in control.findall("joint") if j.find("command_interface") is not None]
    assert commanded == list(arm.joint_names)
    controllers = yaml.safe_load(
        (description_dir().parent / "config" / "gazebo_controllers.yaml").read_text()
    )
    params = controllers["arm_controller"]["ros__parameters"]
    assert params["joints"] == list(arm.joint_names)
    assert params["command_interfaces"] == ["position"]
    plugin = root.find("gazebo/plugin")
    assert plugin is not None and "gz_ros2_control" in plugin.get("filename", "")
    for name in arm.joint_names:
        lim = arm.limits[name]
        assert lim.lower < lim.upper and lim.velocity > 0
