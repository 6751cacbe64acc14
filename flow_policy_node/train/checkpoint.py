"""Checkpoints: a directory of safetensors + JSON, never pickle.

model.safetensors     policy weights (EMA weights when training used EMA)
config.json           PolicyConfig (architecture, chunk size, fps, solver)
normalization.json    dataset statistics the normalisers were built from
metadata.json         joint names in order, cameras, image size, task vocabulary,
                      dataset, training steps
raw.safetensors, train_state.safetensors, train_state.json
                      non-EMA weights, optimizer state and step, for --resume
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from flow_policy_node.models.policy import BasePolicy, PolicyConfig, make_policy

FILES = ("model.safetensors", "config.json", "normalization.json", "metadata.json")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, broken, or does not fit the robot; the text says which."""


def save_checkpoint(path: str | Path, policy: BasePolicy, stats: dict, metadata: dict) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    save_file(tensors, path / "model.safetensors")
    (path / "config.json").write_text(json.dumps(policy.cfg.to_dict(), indent=2))
    (path / "normalization.json").write_text(json.dumps(stats, indent=2))
    meta = {**metadata, "tasks": policy.tasks, "cameras": list(policy.cfg.encoder.cameras)}
    (path / "metadata.json").write_text(json.dumps(meta, indent=2))
    return path


def read_metadata(path: str | Path) -> dict:
    path = Path(path)
    _check_files(path)
    return json.loads((path / "metadata.json").read_text())


def _check_files(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; expected {list(FILES)}")


def load_policy(path: str | Path, device: str = "cpu") -> BasePolicy:
    """Rebuild the policy saved at ``path``, in eval mode on ``device``.

    Whether it fits a robot is control/robot_check.py's question (load_for_robot).
    """
    path = Path(path)
    _check_files(path)
    meta = json.loads((path / "metadata.json").read_text())
    try:
        cfg = PolicyConfig.from_dict(json.loads((path / "config.json").read_text()))
        stats = json.loads((path / "normalization.json").read_text())
        policy = make_policy(cfg, stats, meta["tasks"])
        policy.load_state_dict(load_file(path / "model.safetensors"))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} is inconsistent: {exc}") from exc
    return policy.to(device).eval()


def save_train_state(path: Path, optimizer: torch.optim.Optimizer, step: int) -> None:
    """Optimizer moments and step for resume, flattened into safetensors + JSON."""
    tensors, layout = {}, {"step": step, "param_groups": [], "state_keys": {}}
    sd = optimizer.state_dict()
    for g in sd["param_groups"]:
        layout["param_groups"].append({k: v for k, v in g.items()})
    for pid, st in sd["state"].items():
        keys = []
        for k, v in st.items():
            tensors[f"opt.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
            keys.append(k)
        layout["state_keys"][str(pid)] = keys
    save_file(tensors, path / "train_state.safetensors")
    (path / "train_state.json").write_text(json.dumps(layout))


def load_train_state(path: Path, optimizer: torch.optim.Optimizer) -> int:
    layout = json.loads((path / "train_state.json").read_text())
    tensors = load_file(path / "train_state.safetensors")
    state = {
        int(pid): {k: tensors[f"opt.{pid}.{k}"] for k in keys} for pid, keys in layout["state_keys"].items()
    }
    optimizer.load_state_dict({"state": state, "param_groups": layout["param_groups"]})
    return int(layout["step"])
