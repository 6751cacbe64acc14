"""The camera policy: picking by command from the front camera alone, and how robust it is.

    python benchmarks/vision.py [--runs 2] [--episodes 50] [--no-baselines]
    # writes benchmarks/results/vision.json, vision_perturbed.png, vision_views.png

1. `flow-policy demo` (what `make demo` runs: collect through ROS, convert, train, evaluate
   through ROS), ``--runs`` times, each a fresh process in its own ROS domain: wall time,
   success through ROS, and the training rate (the machine's speed reference).
2. Each run's checkpoint closed loop in the embedded sim (no ROS, the same sim and
   policy) over ``--episodes`` seeds per pick task never seen in training: ``success`` is the
   median over runs, ``success_runs`` each run's.
3. The first run's checkpoint under every scene perturbation of sim/perturb.py (camera
   moved / turned, light, cube paint and size, a distractor), the same seeds for each; and
   the robustness recipes (``RECIPES``), trained without ROS and perturbed alike: the demo's
   recipe with image augmentation (random shifts, brightness, contrast: train/augment.py)
   and standardised keypoint maps; the same on demos of which 70% have a distractor of
   random colour and place; and the same on demos in randomised scenes
   (``randomize_scene`` 1.0: camera within 4 cm / 3 degrees, light, paint, cube size, a
   distractor of another colour in half, anywhere off the cubes' area).
4. Baselines: flow, regression and diffusion with the same encoders (camera + the goal
   head), the same scripted demos (collected without ROS, seeds 0.., the demo's scene
   randomisation), the same steps and batch, on the three pick tasks plus the bimodal
   obstacle task (whose goal point stays an input).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from demo import run as run_demo

from flow_policy_node.models.encoders import ImageEncoderConfig, ObservationEncoderConfig
from flow_policy_node.models.policy import PolicyConfig
from flow_policy_node.ros.demo import DemoConfig
from flow_policy_node.sim.demos import ExpertDemos
from flow_policy_node.sim.env import SimConfig
from flow_policy_node.sim.evaluate import EvalConfig, evaluate
from flow_policy_node.sim.perturb import PERTURBATIONS, evaluate_perturbed, plot_perturbed
from flow_policy_node.sim.pictures import Shown, draw_episodes, pick_examples
from flow_policy_node.tasks import get_task
from flow_policy_node.train.augment import AugmentConfig
from flow_policy_node.train.checkpoint import load_policy
from flow_policy_node.train.loop import TrainConfig, train

RESULTS = Path(__file__).parent / "results"
PICKS = ("pick_red", "pick_green", "pick_blue")


def closed_loop(policy, tasks, episodes: int) -> dict:
    sim = SimConfig(cameras=tuple(policy.cfg.encoder.cameras))
    return evaluate(policy, EvalConfig(tasks=tuple(tasks), episodes=episodes), sim)


@dataclass(frozen=True)
class Recipe:
    """A change to the demo's recipe for robustness, trained without ROS and perturbed."""

    randomize_scene: float = 0.0  # demos in randomised scenes (sim/scene.py Scene.randomized)
    distractors: float = 0.0  # share of demos with a distractor of random colour and place
    # Image shifts of up to 4 px (the turned camera moves the table ~4 px), brightness, contrast.
    augment: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(shift_px=4, brightness=0.4, contrast=0.2)
    )
    keypoint_norm: bool = True  # standardised keypoint maps (ImageEncoderConfig)


# results key -> recipe
RECIPES = {
    "perturbed_augmented": Recipe(),
    "perturbed_distractors": Recipe(distractors=0.7),
    "perturbed_randomized_scenes": Recipe(randomize_scene=1.0),
}


def train_like_demo(data, kind: str = "flow", steps: int | None = None, recipe: Recipe | None = None):
    d = DemoConfig()
    image_goal = tuple(get_task(t).command for t in PICKS)
    image = ImageEncoderConfig(keypoint_norm=recipe is not None and recipe.keypoint_norm)
    cfg = TrainConfig(
        policy=PolicyConfig(
            kind=kind, encoder=ObservationEncoderConfig(image_goal_tasks=image_goal, image=image)
        ),
        steps=steps or d.train_steps,
        batch_size=d.batch_size,
        lr=1e-3,
        warmup_steps=50,
        augment=recipe.augment if recipe else AugmentConfig(),
    )
    with tempfile.TemporaryDirectory() as ckpt:
        return train(cfg, data, ckpt).eval()


def perturbed(policy, episodes: int) -> tuple[dict, float]:
    """(perturbation -> task -> rate on the same seeds, worst drop from "none" in points)."""
    out = evaluate_perturbed(policy, EvalConfig(tasks=PICKS, episodes=episodes), list(PERTURBATIONS))
    drop = max(out["none"][t] - rates[t] for rates in out.values() for t in PICKS)
    return out, round(100 * drop, 1)


def expert_demos(tasks, a: argparse.Namespace, recipe: Recipe | None = None) -> ExpertDemos:
    d = DemoConfig()
    recipe = recipe or Recipe()
    sim = SimConfig(cameras=d.cameras, randomize_scene=recipe.randomize_scene, distractors=recipe.distractors)
    return ExpertDemos(tasks, a.demos or d.demos_per_task, 16, cameras=d.cameras, sim=sim)


def main(a: argparse.Namespace) -> dict:
    torch.set_num_threads(2)
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"episodes_per_task": a.episodes}

    def save() -> None:  # after every stage: a late failure keeps what was measured
        (a.out / "vision.json").write_text(json.dumps(results, indent=2) + "\n")

    runs, success_runs = [], []
    done = a.out / "vision.json"
    if a.resume and done.is_file():  # keep the runs already measured, add the missing ones
        results = json.loads(done.read_text())
        success_runs = results["success_runs"]
        runs = [
            {
                "wall_s": w,
                "train_steps_per_s": t,
                "success_rate": r,
                "chunk_ms_p50": c,
                "config": results["demo_config"],
            }
            for w, t, r, c in zip(
                results["demo_wall_s"],
                results["train_steps_per_s"],
                results["ros_success"],
                results["chunk_ms_p50_graph"],
                strict=True,
            )
        ]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(len(runs), a.runs):
            out = a.reuse or Path(tmp) / f"demo{i}"
            runs.append(run_demo("default", out, a.domain + i) if not a.reuse else reused(out))
            policy = load_policy(out / "checkpoint").eval()
            reports = closed_loop(policy, PICKS, a.episodes)
            success_runs.append({t: r.success_rate for t, r in reports.items()})
            print(f"run {i}: {runs[-1]['wall_s']} s, ROS {runs[-1]['success_rate']}, sim {success_runs[-1]}")
            results.update(
                success={t: statistics.median(r[t] for r in success_runs) for t in PICKS},
                success_runs=success_runs,
                runs=len(runs),
                demo_wall_s=[r["wall_s"] for r in runs],
                train_steps_per_s=[r["train_steps_per_s"] for r in runs],
                machine={"cores": 2, "train_steps_per_s": runs[0]["train_steps_per_s"]},
                ros_success=[r["success_rate"] for r in runs],
                chunk_ms_p50_graph=[r["chunk_ms_p50"] for r in runs],
                demo_config=runs[0]["config"],
            )
            save()
            if i == 0:
                shown = [
                    Shown(e.task, e.seed, e.success, np.array(e.joints))
                    for r in reports.values()
                    for e in r.episodes
                ]
                draw_episodes(policy, pick_examples(shown), a.out / "vision_views.png")
                results["perturbed"], results["worst_perturbation_drop_points"] = perturbed(
                    policy, a.perturbed_episodes
                )
                results["perturbed_episodes_per_task"] = a.perturbed_episodes
                save()

    plot_perturbed(
        results["perturbed"], a.out / "vision_perturbed.png", "the demo's camera policy, perturbed"
    )
    for key in a.recipes:
        recipe = RECIPES[key]
        data = expert_demos((*PICKS, "reach"), a, recipe)
        policy = train_like_demo(data, steps=a.steps, recipe=recipe)
        results[key], drop = perturbed(policy, a.perturbed_episodes)
        results[key.replace("perturbed", "worst_drop") + "_points"] = drop
        results[key.replace("perturbed", "recipe")] = asdict(recipe)
        print(key, results[key], flush=True)
        plot_perturbed(results[key], a.out / f"vision_{key}.png", f"{key.replace('_', ' ')} (no ROS)")
        save()
    if not a.no_baselines:
        tasks = (*PICKS, "obstacle")
        data = expert_demos(tasks, a)
        results["baselines"], results["baseline_episodes_per_task"] = {}, a.baseline_episodes
        for kind in ("flow", "regression", "diffusion"):
            reports = closed_loop(train_like_demo(data, kind, a.steps), tasks, a.baseline_episodes)
            results["baselines"][kind] = {t: r.success_rate for t, r in reports.items()}
            print(kind, results["baselines"][kind], flush=True)
            save()
    results["checks"] = {
        ">= 90% on each pick task": all(v >= 0.9 for v in results["success"].values()),
        "make demo within 15 min": all(w <= 900 for w in results["demo_wall_s"]),
        "perturbations cost <= 10 points": results["worst_perturbation_drop_points"] <= 10,
    }
    save()
    print(json.dumps(results["checks"], indent=1))
    return results


def reused(out: Path) -> dict:
    """A finished demo directory's figures, as run_demo reports them (for trying this script)."""
    summary = json.loads((out / "summary.json").read_text())
    timings = summary["timings_s"]
    return {
        "wall_s": round(sum(timings.values()), 1),
        "train_steps_per_s": round(summary["config"]["train_steps"] / timings["train"], 1),
        "success_rate": summary["success_rate"],
        "chunk_ms_p50": round(summary["chunk_ms_p50"], 1),
        "config": summary["config"],
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--perturbed-episodes", type=int, default=20)
    p.add_argument("--baseline-episodes", type=int, default=30)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument(
        "--recipes",
        nargs="*",
        choices=tuple(RECIPES),
        default=list(RECIPES),
        help="robustness recipes to run",
    )
    p.add_argument("--resume", action="store_true", help="keep the runs in the results file, add the rest")
    p.add_argument(
        "--reuse", type=Path, help="a finished `flow-policy demo --out` directory instead of new runs"
    )
    p.add_argument("--demos", type=int, help="demos per task without ROS (default: the demo's)")
    p.add_argument("--steps", type=int, help="training steps without ROS (default: the demo's)")
    p.add_argument("--domain", type=int, default=171)
    p.add_argument("--out", type=Path, default=RESULTS)
    t0 = time.perf_counter()
    main(p.parse_args())
    print(f"{time.perf_counter() - t0:.0f} s")
