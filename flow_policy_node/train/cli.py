"""`flow-policy train`: train a policy on a converted dataset.

Single process (CPU or one GPU):
    flow-policy train data/ --out ckpt/ --policy flow --steps 5000
A dataset recorded with LeRobot (lerobot-record) names its features its own way; say which
is which (or put the same under `features:` in --config):
    flow-policy train lerobot_data/ --out ckpt/ --camera front=observation.images.laptop \
        --goal-feature none --joint-names joint1,joint2,joint3,joint4,joint5,joint6,finger
Several GPUs on one machine (DistributedDataParallel, one process per GPU):
    torchrun --nproc_per_node=4 -m flow_policy_node.cli train data/ --out ckpt/ --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flow_policy_node.cli_common import CommandError, check_writable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a flow policy (or a baseline) on a dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset", type=Path, help="LeRobot v3 dataset (written by `flow-policy convert` or by LeRobot)"
    )
    p.add_argument("--out", type=Path, required=True, help="checkpoint directory")
    p.add_argument("--config", type=Path, help="YAML with TrainConfig fields (policy: {...} nested)")
    p.add_argument("--policy", choices=("flow", "regression", "diffusion"), help="generative method")
    p.add_argument("--velocity-net", choices=("mlp", "unet", "transformer"))
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--horizon", type=int, help="chunk length H")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--threads", type=int, help="CPU threads for torch (default: torch's; 1 is fastest on a busy machine)"
    )
    p.add_argument(
        "--val-fraction", type=float, help="episodes held out for a validation loss (metrics.csv, loss.png)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--frames",
        choices=("auto", "memory", "disk"),
        help="decoded frames in memory, or in a cache on disk read per sample (datasets larger than "
        "RAM); auto (default): disk above 2 GB of frames",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="where the frame cache lives (default: <dataset>/.frame_cache; reused while the dataset "
        "is unchanged)",
    )
    m = p.add_argument_group("dataset features (defaults: the names `flow-policy convert` writes)")
    m.add_argument("--state-feature", metavar="KEY", help="joint positions (default observation.state)")
    m.add_argument("--action-feature", metavar="KEY", help="commanded joint positions (default action)")
    m.add_argument(
        "--goal-feature",
        metavar="KEY",
        help="goal point (default observation.goal); 'none': the data has none",
    )
    m.add_argument(
        "--camera",
        action="append",
        metavar="NAME=KEY",
        help="our camera NAME is the dataset's image feature KEY (repeatable); "
        "default: every observation.images.<name>",
    )
    m.add_argument(
        "--joint-names",
        metavar="A,B,...",
        help="the robot's joint names for the state/action elements, in order",
    )
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    import yaml

    from flow_policy_node.train.loop import TrainConfig

    cfg = (
        TrainConfig.from_dict(yaml.safe_load(args.config.read_text()) or {}) if args.config else TrainConfig()
    )
    for name in ("steps", "batch_size", "lr", "device", "threads", "resume", "val_fraction"):
        value = getattr(args, name)
        if value not in (None, False):
            setattr(cfg, name, value)
    if args.policy:
        cfg.policy.kind = args.policy
    if args.velocity_net:
        cfg.policy.velocity.kind = args.velocity_net
    if args.horizon:
        cfg.policy.horizon = args.horizon
    f = cfg.features
    f.state = args.state_feature or f.state
    f.action = args.action_feature or f.action
    if args.goal_feature:
        f.goal = None if args.goal_feature.lower() == "none" else args.goal_feature
    if args.camera:
        bad = [c for c in args.camera if "=" not in c]
        if bad:
            raise CommandError(f"--camera takes NAME=KEY, got {bad}")
        f.cameras = dict(c.split("=", 1) for c in args.camera)
    if args.joint_names:
        f.joint_names = [n.strip() for n in args.joint_names.split(",") if n.strip()]
    cfg.frames.store = args.frames or cfg.frames.store
    if args.cache_dir:
        cfg.frames.cache_dir = str(args.cache_dir)
    return cfg


def run(args: argparse.Namespace) -> int:
    from flow_policy_node.data.dataset import ChunkDataset
    from flow_policy_node.train.loop import train

    cfg = build_config(args)
    check_writable(args.out, "the checkpoint")
    dataset = ChunkDataset(args.dataset, horizon=cfg.policy.horizon, features=cfg.features, frames=cfg.frames)
    train(cfg, dataset, args.out, dataset_name=str(args.dataset))
    print(f"checkpoint written to {args.out}")
    return 0
