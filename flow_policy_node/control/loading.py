"""Build a :class:`PolicyRuntime` from the node's configuration (what ``configure`` does)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow_policy_node.control.commands import CommandResolver, Embedder, minilm_embedder
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.control.robot_check import load_for_robot
from flow_policy_node.control.runtime import PolicyRuntime, Sink
from flow_policy_node.control.safety import JointLimits
from flow_policy_node.observation import Observation


def load_runtime(
    cfg: PolicyNodeConfig,
    sink: Sink,
    clock: Callable[[], float],
    embedder_loader: Callable[[], Embedder] = minilm_embedder,
) -> PolicyRuntime:
    """Load and check the checkpoint against the robot, apply overrides, warm it up.

    With ``command_embedding`` the language model for free-text commands starts loading
    (``embedder_loader``) on a thread of its own: it took 114 s on a busy machine, and
    exact commands need no model. Raises ValueError (bad parameters) or CheckpointError
    (naming every mismatch).
    """
    problems = cfg.check()
    if problems:
        raise ValueError("bad parameters: " + "; ".join(problems))
    policy, meta = load_for_robot(cfg.checkpoint, cfg.joint_names, cfg.cameras, cfg.device)
    if cfg.torch_threads > 0:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    if cfg.solver:
        policy.cfg.solver = cfg.solver
    if cfg.ode_steps > 0:
        policy.cfg.steps = cfg.ode_steps
    joint_names = list(meta["joint_names"])  # the checkpoint's order; messages match by name
    idx = [cfg.joint_names.index(n) for n in joint_names]
    limits = JointLimits(
        tuple(joint_names),
        np.array(cfg.joint_lower)[idx],
        np.array(cfg.joint_upper)[idx],
        np.array(cfg.joint_max_velocity)[idx],
    )
    resolver = CommandResolver(policy.tasks, None, cfg.command_threshold, cfg.command_margin)
    if cfg.command_embedding:
        resolver.load_in_background(embedder_loader)
    image_size = tuple(int(v) for v in meta.get("image_size", (0, 0)))
    runtime = PolicyRuntime(policy, joint_names, limits, image_size, cfg, resolver, sink, clock)
    try:
        from flow_policy_node.kinematics import Kinematics

        runtime.kinematics = Kinematics()
        runtime.kinematics.positions(np.zeros(len(joint_names)), joint_names, cfg.tcp_link)
    except Exception as exc:  # markers are a visual aid: run without them
        sink.log("warn", f"no predicted path markers: {exc}")
        runtime.kinematics = None
    _warm_up(runtime)
    return runtime


def _warm_up(runtime: PolicyRuntime) -> None:
    """One chunk with and one without a prefix, so the first real chunk is not slow."""
    h, w = runtime.image_size
    obs = Observation(
        state=np.zeros(len(runtime.joint_names), np.float32),
        images={c: np.full((h, w, 3), 128, np.uint8) for c in runtime.cameras},
        task=runtime.policy.tasks[0],
    )
    chunk = runtime.policy.predict(obs, seed=0)
    runtime.policy.predict(obs, prefix=chunk[:2], seed=0)
