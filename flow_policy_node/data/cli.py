"""`flow-policy convert`: rosbag2 episodes -> LeRobot v3 dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from flow_policy_node.cli_common import check_writable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert rosbag2 episodes (MCAP or sqlite3) into a LeRobot v3 dataset",
        description="Resample bags onto an exact 1/fps grid and write a LeRobotDataset v3 layout.",
    )
    p.add_argument("bags", nargs="+", type=Path, help="bag directories, or directories containing bags")
    p.add_argument("out", type=Path, help="output dataset directory (must not exist or be empty)")
    p.add_argument(
        "--fps", type=int, default=10, help="frame rate of the dataset (an integer, as LeRobot stores it)"
    )
    p.add_argument("--state-topic", default="/joint_states")
    p.add_argument(
        "--camera",
        action="append",
        metavar="NAME=TOPIC",
        help="camera name and image topic (repeatable); default: front, wrist on /camera/<name>/image_raw",
    )
    p.add_argument(
        "--action-topic",
        default="/arm_controller/joint_trajectory",
        help="commanded trajectory topic; 'none' uses the next state as the action",
    )
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="resize frames")
    p.add_argument(
        "--max-gap", type=float, default=0.25, help="seconds without a sample before a tick is a gap"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flow_policy_node.data.convert import ConvertConfig, convert

    check_writable(args.out, "the dataset")
    cfg = ConvertConfig(fps=args.fps, state_topic=args.state_topic, max_gap=args.max_gap)
    if args.camera:
        cfg.cameras = dict(c.split("=", 1) for c in args.camera)
    cfg.action_topic = None if args.action_topic.lower() == "none" else args.action_topic
    if args.image_size:
        cfg.image_size = tuple(args.image_size)
    reports = convert(args.bags, args.out, cfg)
    kept = [r for r in reports if not r.skipped]
    print(f"{len(kept)}/{len(reports)} episodes, {sum(r.frames for r in kept)} frames -> {args.out}")
    for r in reports:
        status = f"skipped: {r.skipped}" if r.skipped else f"{r.frames} frames, {r.gap_ticks} gap ticks"
        print(f"  {Path(r.bag).name}: {status}")
    return 0
