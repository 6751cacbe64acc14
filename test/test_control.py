"""Issue 5: the policy node's ROS-free logic (chunk scheduling, safety, observations, FK)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from flow_policy_node.control.chunking import ChunkingConfig, ChunkScheduler, seam_jump_ratio
from flow_policy_node.control.observations import JOINTS, ObservationCache
from flow_policy_node.control.safety import JointLimits, UnsafeChunk, limit_chunk, velocities
from flow_policy_node.kinematics import Kinematics
from flow_policy_node.robot import default_arm

D = 7


def ramp(t_obs: float, dt: float, h: int, offset: float = 0.0) -> np.ndarray:
    """A chunk whose joint 0 equals absolute time (+ offset): where it 'should' be is obvious."""
    out = np.zeros((h, D))
    out[:, 0] = t_obs + dt * np.arange(1, h + 1) + offset
    return out


def test_new_chunk_takes_over_after_the_delay_at_a_grid_point() -> None:
    s = ChunkScheduler(ChunkingConfig(mode="naive", dt=0.1, execution_horizon=4), horizon=8)
    seg = s.schedule(ramp(1.0, 0.1, 8), t_obs=1.0, now=1.0, current=np.zeros(D))
    assert seg is not None and seg.first_step == 0 and seg.stamp == pytest.approx(1.0)
    s.commit(seg, now=1.0)
    # Inference took 0.25 s: steps at 1.1 and 1.2 already ran; the chunk starts at 1.3.
    seg = s.schedule(ramp(1.4, 0.1, 8), t_obs=1.4, now=1.65, current=np.zeros(D))
    assert seg.first_step == 3 and seg.stamp == pytest.approx(1.7)
    assert seg.positions[0, 0] == pytest.approx(1.8)  # positions[m] is at stamp + (m + 1) dt
    assert seg.start[0] == pytest.approx(1.7)  # the plan's target at the stamp
    assert s.schedule(ramp(1.4, 0.1, 8), t_obs=1.4, now=2.3, current=np.zeros(D)) is None


def test_rtc_prefix_holds_the_committed_steps_over_the_estimated_delay() -> None:
    s = ChunkScheduler(ChunkingConfig(mode="rtc", dt=0.1, delay_margin_steps=1), horizon=10)
    assert s.prefix(0.0) is None  # nothing committed yet
    s.commit(s.schedule(ramp(0.0, 0.1, 10), 0.0, 0.0, np.zeros(D)), now=0.0)
    s.record_delay(0.15)
    s.record_delay(0.12)
    assert s.committed_steps() == 3  # ceil(0.15 / 0.1) + 1
    pre = s.prefix(0.4)
    np.testing.assert_allclose(pre[:, 0], [0.5, 0.6, 0.7])
    assert ChunkScheduler(ChunkingConfig(mode="naive"), 10).prefix(0.4) is None


def test_rtc_prefix_margin_leaves_the_execution_horizon_fresh() -> None:
    s = ChunkScheduler(
        ChunkingConfig(mode="rtc", dt=0.1, execution_horizon=3, delay_margin_steps=4), horizon=8
    )
    s.record_delay(0.15)
    assert s.committed_steps() == 5  # 2 delay steps + margin, capped at H - E = 5
    s.record_delay(0.65)
    assert s.committed_steps() == 7  # 7 steps of delay are committed whatever the cap


def test_ensemble_blends_overlapping_chunks_with_exponential_weights() -> None:
    m = 0.5
    s = ChunkScheduler(ChunkingConfig(mode="ensemble", dt=0.1, ensemble_decay=m), horizon=6)
    s.commit(s.schedule(ramp(0.0, 0.1, 6), 0.0, 0.0, np.zeros(D)), now=0.0)
    seg = s.schedule(ramp(0.2, 0.1, 6, offset=1.0), 0.2, 0.2, np.zeros(D))
    w_old, w_new = 1.0, np.exp(-m)
    # At 0.3 .. 0.6 both chunks cover the step; at 0.7, 0.8 only the new one does.
    expect = (w_old * np.array([0.3, 0.4, 0.5, 0.6]) + w_new * np.array([1.3, 1.4, 1.5, 1.6])) / (
        w_old + w_new
    )
    np.testing.assert_allclose(seg.positions[:4, 0], expect)
    np.testing.assert_allclose(seg.positions[4:, 0], [1.7, 1.8])


def test_due_starts_inference_early_by_the_delay() -> None:
    s = ChunkScheduler(ChunkingConfig(mode="rtc", dt=0.1, execution_horizon=5), horizon=10)
    assert s.due(0.0)
    s.commit(s.schedule(ramp(0.0, 0.1, 10), 0.0, 0.0, np.zeros(D)), now=0.0)
    s.record_delay(0.2)
    assert not s.due(0.25)
    assert s.due(0.31)  # takeover at 0.5, minus 0.2 s of inference


def test_seam_jump_ratio_sees_a_jump_only_at_seams() -> None:
    x = np.linspace(0, 1, 11)[:, None].repeat(D, axis=1)
    seams = np.zeros(10, bool)
    seams[4] = True
    assert seam_jump_ratio(x, seams) == pytest.approx(1.0)
    x[5:] += 0.5
    assert seam_jump_ratio(x, seams) == pytest.approx(6.0)


def limits() -> JointLimits:
    arm = default_arm()
    return JointLimits(arm.joint_names, arm.lower(), arm.upper(), arm.max_velocity())


def test_limits_clamp_positions_and_cap_each_step() -> None:
    lim = limits()
    start = np.zeros(D)
    chunk = np.zeros((3, D))
    chunk[:, 0] = [10.0, 10.0, 10.0]  # beyond joint_1's 2.9 and far beyond one step
    chunk[:, 1] = [-0.05, -0.1, -0.15]  # slow and inside: untouched
    out, report = limit_chunk(chunk, start, dt=0.1, limits=lim)
    np.testing.assert_allclose(out[:, 0], [0.2, 0.4, 0.6])  # 2.0 rad/s * 0.1 s per step
    np.testing.assert_allclose(out[:, 1], chunk[:, 1])
    assert report.rate_limited and not report.clamped
    out, report = limit_chunk(chunk, np.full(D, 2.85), dt=0.1, limits=lim)
    assert out[:, 0].max() == pytest.approx(2.9) and report.clamped
    assert np.all(out <= np.array(lim.upper) + 1e-12) and np.all(out >= np.array(lim.lower) - 1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_chunks_are_refused_naming_the_joint(bad: float) -> None:
    chunk = np.zeros((4, D))
    chunk[2, 3] = bad
    with pytest.raises(UnsafeChunk, match="joint_4"):
        limit_chunk(chunk, np.zeros(D), 0.1, limits())


def test_velocities_are_central_differences_ending_at_rest() -> None:
    pos = np.arange(1, 5, dtype=float)[:, None] * np.ones(D) * 0.1
    v = velocities(np.zeros(D), pos, 0.1)
    np.testing.assert_allclose(v[:3, 0], [1.0, 1.0, 1.0])
    assert np.all(v[-1] == 0)


def test_observation_cache_reports_missing_bad_and_stale_streams() -> None:
    cache = ObservationCache(("front",), max_age=0.5)
    obs, age, problem = cache.snapshot(10.0)
    assert obs is None and age == -1 and "joints" in problem and "front" in problem
    cache.put(JOINTS, np.arange(D, dtype=float), 9.9)
    cache.put("front", np.zeros((4, 4, 3), np.uint8), 9.8)
    obs, age, problem = cache.snapshot(10.0)
    assert problem == "" and age == pytest.approx(0.2) and obs.stamp == pytest.approx(9.9)
    np.testing.assert_array_equal(obs.state, np.arange(D))
    obs, age, problem = cache.snapshot(10.6)
    assert obs is None and "stale" in problem and "front 0.80 s" in problem
    cache.put_error(JOINTS, "non-finite positions for ['joint_2']")
    obs, _, problem = cache.snapshot(10.0)
    assert obs is None and "joint_2" in problem
    cache.put(JOINTS, np.zeros(D), 10.0)  # a good message clears the error
    assert cache.snapshot(10.0)[2] == ""
    obs, _, problem = cache.snapshot(8.0)
    assert obs is None and "use_sim_time" in problem


def test_forward_kinematics_matches_mujoco_tcp_site() -> None:
    from flow_policy_node.sim.env import ArmEnv, SimConfig

    env = ArmEnv(SimConfig(render=False))
    kin = Kinematics()
    names = env.arm.joint_names
    rng = np.random.default_rng(0)
    qs = rng.uniform(env.lower, env.upper, (20, D))
    want = []
    for q in qs:
        env.data.qpos[env.qadr] = q
        mujoco.mj_kinematics(env.model, env.data)
        want.append(env.tcp_position())
    np.testing.assert_allclose(kin.positions(qs, names, "tcp"), np.array(want), atol=1e-6)
    # Joint order comes from the names, not from the vector's position.
    perm = np.arange(D)[::-1]
    np.testing.assert_allclose(
        kin.positions(qs[:, perm], [names[i] for i in perm]), np.array(want), atol=1e-6
    )
    env.close()


def test_rtc_eases_out_of_the_plan_where_a_new_chunk_disagrees_beyond_its_prefix() -> None:
    """A chunk that keeps the committed prefix but then heads the other way (another mode)."""
    dt, h = 0.1, 16
    plans = {}
    for mode in ("naive", "rtc"):
        s = ChunkScheduler(ChunkingConfig(mode=mode, dt=dt, delay_margin_steps=0), horizon=h)
        s.commit(s.schedule(ramp(0.0, dt, h), 0.0, 0.0, np.zeros(D)), now=0.0)
        s.record_delay(0.2)
        prefix = s.prefix(0.4)  # committed: 0.5, 0.6
        other = ramp(0.4, dt, h)
        other[:, 0] = 0.4 - dt * np.arange(1, h + 1)  # turns back after the prefix
        if prefix is not None:
            other[: len(prefix)] = prefix  # what the policy's inpainting guarantees
        seg = s.schedule(other, 0.4, 0.6, np.zeros(D), 0 if prefix is None else len(prefix))
        plans[mode] = np.concatenate([[seg.start[0]], seg.positions[:, 0]])
    steps = {m: np.abs(np.diff(p)) for m, p in plans.items()}
    assert steps["naive"].max() > 5 * dt  # jumps across the seam
    assert plans["rtc"][0] == pytest.approx(0.6)  # takes over where the committed steps end
    assert steps["rtc"][0] < 1.5 * dt  # the seam itself is an ordinary step
    assert steps["rtc"].max() < 0.6 * steps["naive"].max()  # turns round over the overlap, no jump
    assert plans["rtc"][-1] == pytest.approx(plans["naive"][-1])  # and ends where the new chunk goes


@pytest.mark.parametrize("use", ["sim", "real"])
def test_parameter_files_name_only_known_parameters_with_valid_values(use: str) -> None:
    from pathlib import Path

    import yaml

    from flow_policy_node.control.config import PolicyNodeConfig, config_fields

    path = Path(__file__).resolve().parent.parent / "config" / f"policy_node.{use}.yaml"
    params = yaml.safe_load(path.read_text())["/**/flow_policy_node"]["ros__parameters"]
    params.pop("use_sim_time")
    assert set(params) <= set(config_fields()), set(params) - set(config_fields())
    assert PolicyNodeConfig(**params).check() == []
