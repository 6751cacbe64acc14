"""The world not quite as in training: named scene perturbations and their evaluation.

Each perturbation changes one thing about how the scene looks (never the task): the front
camera moved or turned by a few cm / degrees, dimmer or brighter light, another shade of
cube paint, slightly larger cubes, a distractor object on the table.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from flow_policy_node.observation import Policy
from flow_policy_node.sim.env import SimConfig
from flow_policy_node.sim.evaluate import EvalConfig, evaluate
from flow_policy_node.sim.scene import Scene

NOMINAL = Scene()
PERTURBATIONS: dict[str, Scene] = {
    "none": NOMINAL,
    # 3.5 cm to the side, forward and up
    "camera_moved": replace(NOMINAL, camera_pos=(0.74, 0.025, 0.565)),
    # turned ~2.5 degrees (2.5 cm at the table) and rolled 2 degrees
    "camera_turned": replace(NOMINAL, camera_target=(0.40, 0.025, 0.04), camera_roll_deg=2.0),
    "dim_light": replace(NOMINAL, light=0.6),
    "bright_light": replace(NOMINAL, light=1.4),
    "cube_shade": replace(NOMINAL, cube_shade=0.07),
    "cube_size": replace(NOMINAL, cube_scale=1.1),
    "distractor": replace(NOMINAL, distractor=True),
}


def evaluate_perturbed(
    policy: Policy, cfg: EvalConfig, names: list[str], sim: SimConfig | None = None, progress: bool = True
) -> dict[str, dict[str, float]]:
    """perturbation -> task -> success rate, the same seeds under every perturbation."""
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbations {unknown}; known: {list(PERTURBATIONS)}")
    base = sim or SimConfig(cameras=tuple(policy.cfg.encoder.cameras))
    out: dict[str, dict[str, float]] = {}
    for name in names:
        reports = evaluate(policy, cfg, replace(base, scene=PERTURBATIONS[name]), progress=progress)
        out[name] = {task: rep.success_rate for task, rep in reports.items()}
    return out


def plot_perturbed(results: dict[str, dict[str, float]], png, title: str = "") -> None:
    """Grouped bars: success per perturbation, one bar per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    tasks = list(next(iter(results.values())))
    width = 0.8 / len(tasks)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2, 3.4))
    for i, task in enumerate(tasks):
        x = np.arange(len(names)) + (i - (len(tasks) - 1) / 2) * width
        ax.bar(x, [100 * results[n][task] for n in names], width, label=task)
    ax.set_xticks(np.arange(len(names)), names, rotation=25, ha="right")
    ax.set_ylabel("success [%]")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title or "closed-loop success under scene perturbations", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
