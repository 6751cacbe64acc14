"""The policy node's configuration: one dataclass, declared as ROS parameters field by field.

Defaults here are the defaults of the node; ``config/policy_node.{sim,real}.yaml`` override
them per use. Joint names and limits default to the arm's URDF (flow_policy_node.robot).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from flow_policy_node import names
from flow_policy_node.control.chunking import MODES
from flow_policy_node.robot import default_arm


def _names() -> list[str]:
    return list(default_arm().joint_names)


def _lower() -> list[float]:
    return default_arm().lower()


def _upper() -> list[float]:
    return default_arm().upper()


def _velocity() -> list[float]:
    return default_arm().max_velocity()


@dataclass
class PolicyNodeConfig:
    checkpoint: str = ""  # checkpoint directory (model.safetensors, config.json, ...)
    device: str = "cpu"
    # Small policies run fastest on one thread; more threads contend with the sim and the
    # executor on a shared CPU (measured: 2.5 ms vs 50 ms per chunk on 2 busy cores). 0: torch's default.
    torch_threads: int = 1
    autostart: bool = True  # configure + activate at start (no lifecycle manager needed)
    # robot
    joint_names: list[str] = field(default_factory=_names)
    joint_lower: list[float] = field(default_factory=_lower)
    joint_upper: list[float] = field(default_factory=_upper)
    joint_max_velocity: list[float] = field(default_factory=_velocity)
    cameras: list[str] = field(default_factory=lambda: ["front", "wrist"])
    # one topic per camera; a topic ending in /compressed is read as CompressedImage
    camera_topics: list[str] = field(
        default_factory=lambda: [names.camera_topic("front"), names.camera_topic("wrist")]
    )
    max_aspect_change: float = 0.1  # images whose aspect differs more are refused, not resized
    base_frame: str = "base_link"  # frame of goals and of the predicted path
    tcp_link: str = "tcp"  # link whose path is drawn
    # topics: relative names, so that a namespace (launch argument) prefixes them all
    joint_state_topic: str = names.JOINT_STATES
    trajectory_topic: str = names.TRAJECTORY
    command_topic: str = names.COMMAND
    goal_topic: str = names.GOAL
    task_success_topic: str = names.TASK_SUCCESS
    status_topic: str = names.POLICY_STATUS
    path_topic: str = names.PREDICTED_PATH
    # QoS
    sensor_qos: str = "best_effort"  # best_effort | reliable (images, joint states)
    qos_depth: int = 10  # the trajectory publisher's; sensors keep only the newest sample
    # control
    control_rate_hz: float = 0.0  # trajectory point rate; 0: the checkpoint's fps
    execution_horizon: int = 4  # chunk steps that run before the next chunk takes over
    chunk_blending: str = "rtc"  # rtc | ensemble | naive
    ensemble_decay: float = 0.1
    delay_margin_steps: int = 4  # rtc: prefix steps beyond the delay (see ChunkingConfig)
    solver: str = ""  # euler | midpoint | heun | rk4; "": the checkpoint's
    ode_steps: int = 0  # 0: the checkpoint's
    seed: int = -1  # >= 0: chunk n after a command or reset is sampled with seed + n (reproducible)
    max_observation_age: float = 0.5  # s
    # Benchmarks only: publish each chunk no earlier than this long after its observation
    # (node clock), to measure how chunk joining copes with slow inference. 0: off.
    inject_delay_ms: float = 0.0
    status_rate_hz: float = 5.0
    diagnostics_rate_hz: float = 1.0
    # commands
    command: str = ""  # initial command ("": wait for one; no motion before a command)
    command_embedding: bool = True  # resolve free text with all-MiniLM-L6-v2 (else exact only)
    command_threshold: float = 0.6
    command_margin: float = 0.08

    def check(self) -> list[str]:
        """Problems with the values, each a sentence naming the parameter."""
        problems = []
        d = len(self.joint_names)
        for name in ("joint_lower", "joint_upper", "joint_max_velocity"):
            if len(getattr(self, name)) != d:
                problems.append(f"{name} has {len(getattr(self, name))} values for {d} joint_names")
        if len(self.cameras) != len(self.camera_topics):
            problems.append(f"cameras {self.cameras} and camera_topics {self.camera_topics} differ in length")
        if self.chunk_blending not in MODES:
            problems.append(f"chunk_blending {self.chunk_blending!r} is not one of {MODES}")
        if self.sensor_qos not in ("best_effort", "reliable"):
            problems.append(f"sensor_qos {self.sensor_qos!r} is not best_effort or reliable")
        if self.execution_horizon < 1 or self.max_observation_age <= 0 or self.status_rate_hz <= 0:
            problems.append("execution_horizon, max_observation_age and status_rate_hz must be positive")
        return problems


def config_fields() -> list[str]:
    return [f.name for f in fields(PolicyNodeConfig)]
