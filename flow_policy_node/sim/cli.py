"""`flow-policy eval` (closed loop in the embedded simulator, no ROS) and `flow-policy expert`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint closed loop in the MuJoCo sim (no ROS)")
    p.add_argument("checkpoint", type=Path)
    p.add_argument(
        "--tasks", nargs="+", default=["pick_red"], help="task names (see `flow-policy expert --list`)"
    )
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run_eval)

    e = subparsers.add_parser("expert", help="run the scripted expert and report its success per task")
    e.add_argument("--tasks", nargs="+", default=None)
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--list", action="store_true", help="list the tasks and their commands")
    e.set_defaults(func=run_expert)


def run_eval(args: argparse.Namespace) -> int:
    from flow_policy_node.sim.evaluate import EvalConfig, evaluate, write_report
    from flow_policy_node.train.checkpoint import load_policy

    policy = load_policy(args.checkpoint, device=args.device)
    reports = evaluate(policy, EvalConfig(tuple(args.tasks), args.episodes, args.seed))
    write_report(reports, args.out, policy.fps)
    for task, rep in reports.items():
        line = f"{task:10s} success {rep.success_rate:6.1%}  rms jerk {rep.rms_jerk:8.2f}"
        print(f"{line}  chunk {rep.chunk_ms_p50:.1f} ms")
    print(f"report: {args.out / 'eval.json'}, {args.out / 'trajectories.png'}")
    return 0


def run_expert(args: argparse.Namespace) -> int:
    from flow_policy_node.sim.env import ArmEnv, SimConfig
    from flow_policy_node.sim.expert import run_expert_episode
    from flow_policy_node.sim.tasks import TASKS

    if args.list:
        for t in TASKS.values():
            print(f"{t.name:10s} {t.command!r}")
        return 0
    env = ArmEnv(SimConfig(render=False))
    for task in args.tasks or list(TASKS):
        results = [run_expert_episode(env, task, s) for s in range(args.episodes)]
        print(f"{task:10s} expert success {sum(r.success for r in results)}/{len(results)}")
    env.close()
    return 0
