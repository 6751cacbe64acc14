"""`flow-policy convert`: rosbag2 episodes -> LeRobot v3 dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from flow_policy_node import names
from flow_policy_node.cli_common import check_writable, config_option, given
from flow_policy_node.names import absolute

CONFIG = "flow_policy_node.data.convert.ConvertConfig"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert rosbag2 episodes (MCAP or sqlite3) into a LeRobot v3 dataset",
        description="Resample bags onto an exact 1/fps grid and write a LeRobotDataset v3 layout.",
    )
    p.add_argument("bags", nargs="+", type=Path, help="bag directories, or directories containing bags")
    p.add_argument("out", type=Path, help="output dataset directory (must not exist or be empty)")
    config_option(p, "--fps", CONFIG, "frame rate of the dataset, an integer as LeRobot stores it", type=int)
    config_option(p, "--state-topic", CONFIG, "joint states")
    p.add_argument(
        "--camera",
        action="append",
        metavar="NAME=TOPIC",
        help="camera name and image topic (repeatable); default: front and wrist on "
        + absolute(names.camera_topic("<name>")),
    )
    config_option(
        p, "--action-topic", CONFIG, "commanded trajectory topic; 'none' uses the next state as the action"
    )
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="resize frames")
    config_option(p, "--max-gap", CONFIG, "seconds without a sample before a tick is a gap", type=float)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """ConvertConfig with the options given on the command line."""
    from flow_policy_node.data.convert import ConvertConfig

    cfg = ConvertConfig(**given(args, "fps", "state_topic", "max_gap"))
    if args.camera:
        cfg.cameras = dict(c.split("=", 1) for c in args.camera)
    if args.action_topic:
        cfg.action_topic = None if args.action_topic.lower() == "none" else args.action_topic
    if args.image_size:
        cfg.image_size = tuple(args.image_size)
    return cfg


def run(args: argparse.Namespace) -> int:
    from flow_policy_node.data.convert import convert

    check_writable(args.out, "the dataset")
    cfg = build_config(args)
    reports = convert(args.bags, args.out, cfg)
    kept = [r for r in reports if not r.skipped]
    print(f"{len(kept)}/{len(reports)} episodes, {sum(r.frames for r in kept)} frames -> {args.out}")
    for r in reports:
        status = f"skipped: {r.skipped}" if r.skipped else f"{r.frames} frames, {r.gap_ticks} gap ticks"
        print(f"  {Path(r.bag).name}: {status}")
    return 0
