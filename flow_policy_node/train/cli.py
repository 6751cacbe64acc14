"""`flow-policy train`: train a policy on a converted dataset.

Single process (CPU or one GPU):
    flow-policy train data/ --out ckpt/ --policy flow --steps 5000
Several GPUs on one machine (DistributedDataParallel, one process per GPU):
    torchrun --nproc_per_node=4 -m flow_policy_node.cli train data/ --out ckpt/ --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a flow policy (or a baseline) on a dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", type=Path, help="LeRobot v3 dataset written by `flow-policy convert`")
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
        "--val-fraction", type=float, help="episodes held out for a validation loss (metrics.csv, loss.png)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    import yaml

    from flow_policy_node.train.loop import TrainConfig

    cfg = (
        TrainConfig.from_dict(yaml.safe_load(args.config.read_text()) or {}) if args.config else TrainConfig()
    )
    for name in ("steps", "batch_size", "lr", "device", "resume", "val_fraction"):
        value = getattr(args, name)
        if value not in (None, False):
            setattr(cfg, name, value)
    if args.policy:
        cfg.policy.kind = args.policy
    if args.velocity_net:
        cfg.policy.velocity.kind = args.velocity_net
    if args.horizon:
        cfg.policy.horizon = args.horizon
    return cfg


def run(args: argparse.Namespace) -> int:
    from flow_policy_node.data.dataset import ChunkDataset
    from flow_policy_node.train.loop import train

    cfg = build_config(args)
    dataset = ChunkDataset(args.dataset, horizon=cfg.policy.horizon)
    train(cfg, dataset, args.out, dataset_name=str(args.dataset))
    print(f"checkpoint written to {args.out}")
    return 0
