"""`flow-policy eval` (closed loop in the embedded simulator, no ROS) and `flow-policy expert`."""

from __future__ import annotations

import argparse
from pathlib import Path

from flow_policy_node.cli_common import CommandError, check_writable, config_option, given

EVAL = "flow_policy_node.sim.evaluate.EvalConfig"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint closed loop in the MuJoCo sim (no ROS)")
    p.add_argument("checkpoint", type=Path)
    config_option(p, "--tasks", EVAL, "task names (see `flow-policy expert --list`)", nargs="+")
    config_option(p, "--episodes", EVAL, "episodes per task", type=int)
    config_option(p, "--seed", EVAL, "seed of the first episode", type=int)
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--perturb",
        nargs="+",
        metavar="NAME",
        help="also evaluate under scene perturbations (camera_moved, camera_turned, dim_light, "
        "bright_light, cube_shade, cube_size, distractor, or all)",
    )
    p.set_defaults(func=run_eval)

    e = subparsers.add_parser("expert", help="run the scripted expert and report its success per task")
    e.add_argument("--tasks", nargs="+", default=None)
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--list", action="store_true", help="list the tasks, their commands and goals")
    e.set_defaults(func=run_expert)


def run_eval(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from flow_policy_node.sim.env import SimConfig
    from flow_policy_node.sim.evaluate import EvalConfig, evaluate, write_report
    from flow_policy_node.sim.perturb import PERTURBATIONS, evaluate_perturbed, plot_perturbed
    from flow_policy_node.sim.pictures import Shown, draw_episodes, pick_examples
    from flow_policy_node.train.checkpoint import load_policy

    perturb = list(PERTURBATIONS)[1:] if args.perturb == ["all"] else args.perturb or []
    unknown = [n for n in perturb if n not in PERTURBATIONS]
    if unknown:
        raise CommandError(f"unknown perturbations {unknown}; known: {', '.join(PERTURBATIONS)}", exit_code=2)
    check_writable(args.out, "the report")
    policy = load_policy(args.checkpoint, device=args.device).eval()
    cfg = EvalConfig(**given(args, "episodes", "seed"))
    if args.tasks:
        cfg.tasks = tuple(args.tasks)
    sim = SimConfig(cameras=tuple(policy.cfg.encoder.cameras), render=bool(policy.cfg.encoder.cameras))
    reports = evaluate(policy, cfg, sim)
    write_report(reports, args.out, policy.fps)
    shown = [
        Shown(e.task, e.seed, e.success, np.array(e.joints)) for r in reports.values() for e in r.episodes
    ]
    draw_episodes(policy, pick_examples(shown), args.out / "views.png")
    for task, rep in reports.items():
        line = f"{task:10s} success {rep.success_rate:6.1%}  rms jerk {rep.rms_jerk:8.2f}"
        print(f"{line}  chunk {rep.chunk_ms_p50:.1f} ms")
    print(f"report: {args.out / 'eval.json'}, {args.out / 'trajectories.png'}, {args.out / 'views.png'}")
    if perturb:
        results = {"none": {t: r.success_rate for t, r in reports.items()}}
        results.update(evaluate_perturbed(policy, cfg, perturb, sim))
        (args.out / "perturbed.json").write_text(json.dumps(results, indent=2))
        plot_perturbed(results, args.out / "perturbed.png")
        for name, rates in results.items():
            print(f"{name:14s} " + "  ".join(f"{t} {v:5.0%}" for t, v in rates.items()))
        print(f"report: {args.out / 'perturbed.json'}, {args.out / 'perturbed.png'}")
    return 0


def run_expert(args: argparse.Namespace) -> int:
    from flow_policy_node.sim.env import ArmEnv, SimConfig
    from flow_policy_node.sim.expert import run_expert_episode
    from flow_policy_node.tasks import TASKS

    if args.list:
        for t in TASKS.values():
            found = " (a camera policy finds it in the image)" if t.goal_from_image else ""
            print(f"{t.name:10s} {t.command!r}; goal: {t.goal or 'none'}{found}")
        return 0
    env = ArmEnv(SimConfig(render=False))
    for task in args.tasks or list(TASKS):
        results = [run_expert_episode(env, task, s) for s in range(args.episodes)]
        print(f"{task:10s} expert success {sum(r.success for r in results)}/{len(results)}")
    env.close()
    return 0
