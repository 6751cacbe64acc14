"""Issue 3: policies, training, checkpoints, multi-process training."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flow_policy_node.control.robot_check import load_for_robot
from flow_policy_node.data.meta import DatasetMeta
from flow_policy_node.models.encoders import ImageEncoderConfig, ObservationEncoderConfig
from flow_policy_node.models.policy import PolicyConfig, make_policy
from flow_policy_node.models.velocity import VelocityNetConfig
from flow_policy_node.observation import ACTION, ACTION_IS_PAD, GOAL, STATE, TASK_INDEX, Observation
from flow_policy_node.train.checkpoint import CheckpointError, load_policy, save_checkpoint
from flow_policy_node.train.loop import TrainConfig, split_episodes, train, validation_loss
from flow_policy_node.train.synthetic import BimodalDataset, ReachDataset, stats_of

HERE = Path(__file__).resolve().parent


def small_config(kind: str, steps: int, cameras=(), horizon: int = 16, net: str = "mlp") -> TrainConfig:
    policy = PolicyConfig(
        kind=kind,
        horizon=horizon,
        encoder=ObservationEncoderConfig(
            cameras=tuple(cameras), token_dim=32, image=ImageEncoderConfig(width=8, out_dim=32)
        ),
        velocity=VelocityNetConfig(kind=net, hidden=256, depth=3),
    )
    return TrainConfig(
        policy=policy, steps=steps, batch_size=128, lr=2e-3, warmup_steps=20, ema_decay=0.9, log_every=50
    )


def modes_hit(chunks: np.ndarray, tol: float = 0.25) -> tuple[float, float, float]:
    """Fractions of chunks near the left mode, near the right mode, and near neither.

    Distance: RMS over the chunk of the two moving joints (the modes are ~1.4 apart; their
    average is ~0.7 from each).
    """
    left, right = BimodalDataset.mode(side=1), BimodalDataset.mode(side=-1)
    d_left = np.sqrt(((chunks - left)[:, :, :2] ** 2).mean(axis=(1, 2)))
    d_right = np.sqrt(((chunks - right)[:, :, :2] ** 2).mean(axis=(1, 2)))
    return (
        float((d_left < tol).mean()),
        float((d_right < tol).mean()),
        float(((d_left >= tol) & (d_right >= tol)).mean()),
    )


@pytest.fixture(scope="module")
def bimodal_policies(tmp_path_factory) -> dict:
    data = BimodalDataset()
    out = tmp_path_factory.mktemp("bimodal")
    policies = {}
    for kind, steps in (("flow", 1500), ("regression", 400)):
        cfg = small_config(kind, steps)
        cfg.batch_size = 256
        policies[kind] = train(cfg, data, out / kind)
    return policies


def sample_many(policy, n: int = 200) -> np.ndarray:
    data = BimodalDataset()
    batch = torch.utils.data.default_collate([data[0]] * n)
    return policy.sample(batch, torch.Generator().manual_seed(1)).numpy()


def test_flow_policy_keeps_both_modes_and_regression_averages_them(bimodal_policies) -> None:
    left, right, neither = modes_hit(sample_many(bimodal_policies["flow"]))
    assert left >= 0.3 and right >= 0.3, (left, right, neither)
    reg = sample_many(bimodal_policies["regression"])
    r_left, r_right, _ = modes_hit(reg)
    assert r_left == 0 and r_right == 0
    # Regression lands between the modes: the bulge joint stays near 0 (into the obstacle).
    assert np.abs(reg[:, 5:11, 1]).max() < 0.5


def continued_after_prefix(policy, n: int = 20) -> int:
    """Of ``n`` chunks inpainted from a prefix on the right-hand mode, how many stay on it.

    The prefix itself must come back exactly. Unguided, half would jump to the other side.
    """
    prefix = BimodalDataset.mode(side=-1)[:5]
    obs = Observation(state=np.zeros(7, np.float32), task="go round")
    continued = 0
    for seed in range(n):
        chunk = policy.predict(obs, prefix=prefix, seed=seed)
        np.testing.assert_allclose(chunk[:5], prefix, atol=1e-6)
        continued += chunk[8, 1] < -0.5
    return continued


def test_inpainting_keeps_the_committed_prefix(bimodal_policies) -> None:
    continued = continued_after_prefix(bimodal_policies["flow"])
    assert continued >= 16, continued


@pytest.mark.parametrize("path", ["cosine", "vp", "polynomial"])
def test_inpainting_continues_the_prefix_under_every_path(tmp_path, path: str) -> None:
    """Real-time chunking's guidance holds the committed side whatever the probability path."""
    cfg = small_config("flow", 800)
    cfg.batch_size, cfg.policy.path = 256, path
    continued = continued_after_prefix(train(cfg, BimodalDataset(), tmp_path / path))
    assert continued >= 16, (path, continued)


def test_checkpoint_round_trip_is_bit_identical_and_mismatch_is_refused(bimodal_policies, tmp_path) -> None:
    trained = bimodal_policies["flow"]
    out = tmp_path / "rt"
    data = BimodalDataset()
    meta = {"joint_names": list(data.meta.joint_names), "image_size": [32, 32]}
    save_checkpoint(out, trained, data.meta.stats, meta)
    loaded = load_policy(out)
    obs = Observation(state=np.zeros(7, np.float32), task="go round")
    assert np.array_equal(trained.predict(obs, seed=3), loaded.predict(obs, seed=3))
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.pt"))

    # One set of rules for whether a checkpoint fits a robot (control/robot_check.py): joints
    # match by name, so their order is free; a robot may have cameras the policy ignores.
    with pytest.raises(
        CheckpointError, match=r"joint names differ: robot lacks \['joint_1'.*checkpoint lacks \['elbow'\]"
    ):
        load_for_robot(str(out), ["elbow", *data.meta.joint_names[1:]], [])
    policy, meta = load_for_robot(str(out), list(data.meta.joint_names[::-1]), ["front"])
    assert meta["joint_names"] == list(data.meta.joint_names)
    assert np.array_equal(policy.predict(obs, seed=3), loaded.predict(obs, seed=3))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nowhere")
    (out / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"lacks \['config.json'\]"):
        load_policy(out)


def test_checkpoints_written_with_the_old_history_option_still_load(tmp_path) -> None:
    """Configs from before n_obs_steps was deleted carry it as 1: they load and act the same;
    a history the encoder cannot take is refused, not silently ignored."""
    data = BimodalDataset(n=8)
    cfg = small_config("flow", 1).policy
    cfg.encoder.cameras = ()
    policy = make_policy(cfg, data.meta.stats, list(data.meta.tasks))
    meta = {"joint_names": list(data.meta.joint_names), "image_size": [0, 0]}
    save_checkpoint(tmp_path, policy, data.meta.stats, meta)
    config = json.loads((tmp_path / "config.json").read_text())
    config["encoder"]["n_obs_steps"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    obs = Observation(state=np.zeros(7, np.float32), task="go round")
    assert np.array_equal(load_policy(tmp_path).predict(obs, seed=0), policy.eval().predict(obs, seed=0))
    config["encoder"]["n_obs_steps"] = 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="n_obs_steps"):
        load_policy(tmp_path)


@pytest.mark.parametrize("net", ["unet", "transformer"])
def test_image_conditioned_policies_learn_from_pixels(tmp_path, net: str) -> None:
    data = ReachDataset()
    policy = train(small_config("flow", 300, cameras=("front",), horizon=8, net=net), data, tmp_path / net)
    batch = torch.utils.data.default_collate([data[i] for i in range(64)])
    pred = policy.sample(batch, torch.Generator().manual_seed(0))
    err = (pred - batch["action"]).abs()[:, -1, 0].mean().item()
    # The final target spans [-1, 2]; predicting the mean would be off by ~0.85 on average.
    assert err < 0.3, err
    assert (tmp_path / net / "loss.png").is_file()
    rows = (tmp_path / net / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) > 3


def test_diffusion_baseline_trains_and_samples_both_ways(tmp_path) -> None:
    cfg = small_config("diffusion", 1500)
    cfg.batch_size = 256
    policy = train(cfg, BimodalDataset(), tmp_path / "diff")
    chunks = sample_many(policy, 100)
    left, right, _ = modes_hit(chunks, tol=0.4)
    assert left + right > 0.5, (left, right)
    policy.cfg.diffusion_sampler = "ddpm"
    assert np.isfinite(sample_many(policy, 10)).all()


def test_resume_continues_the_step_count(tmp_path) -> None:
    data = BimodalDataset(n=64)
    cfg = small_config("flow", 40)
    train(cfg, data, tmp_path)
    cfg.steps, cfg.resume = 80, True
    train(cfg, data, tmp_path)
    steps = [int(r.split(",")[0]) for r in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [40, 50, 80]
    assert json.loads((tmp_path / "metadata.json").read_text())["steps"] == 80


class Episodes(torch.utils.data.Dataset):
    """Episodes of 16 samples with a random state each.

    learnable: the chunk is the state plus a ramp, a rule held-out episodes follow too.
    Otherwise each episode's chunk is a random constant: a policy can memorise the training
    episodes' state -> chunk pairs but cannot guess a held-out one's, so the held-out loss
    must stay above the training one.
    """

    def __init__(self, n_episodes: int = 20, learnable: bool = False) -> None:
        rng = np.random.default_rng(3)
        n = 16 * n_episodes
        self.horizon = 16
        self.episode = np.arange(n) // 16
        if learnable:
            self.state = rng.normal(0, 1, (n, 7)).astype(np.float32)
            ramp = 0.05 * np.arange(1, 17, dtype=np.float32)[:, None]
            self.actions = self.state[:, None, :] + ramp[None]
        else:
            self.state = rng.normal(0, 1, (n_episodes, 7)).astype(np.float32)[self.episode]
            per_episode = rng.normal(0, 1, (n_episodes, 1, 7)).astype(np.float32)
            self.actions = np.repeat(per_episode, 16, axis=1)[self.episode]
        stats = {ACTION: stats_of(self.actions), STATE: stats_of(self.state)}
        self.meta = DatasetMeta(BimodalDataset().meta.joint_names, (), (0, 0), 10.0, ("memorise",), stats)

    def __len__(self) -> int:
        return len(self.episode)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            STATE: torch.from_numpy(self.state[i]),
            GOAL: torch.zeros(3),
            TASK_INDEX: torch.tensor(0),
            ACTION: torch.from_numpy(self.actions[i]),
            ACTION_IS_PAD: torch.zeros(self.horizon, dtype=torch.bool),
        }


def metrics(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_held_out_split_takes_whole_episodes() -> None:
    data = Episodes()
    train_idx, val_idx = split_episodes(data, 0.25, 0)
    held, kept = set(data.episode[val_idx]), set(data.episode[train_idx])
    assert len(held) == 5 and not held & kept and len(held | kept) == 20
    assert sorted(train_idx + val_idx) == list(range(len(data)))  # every sample on one side
    assert split_episodes(data, 0.25, 0) == (train_idx, val_idx)  # the same split on resume
    assert split_episodes(data, 0.25, 1)[1] != val_idx
    with pytest.raises(ValueError, match="episode"):
        split_episodes(BimodalDataset(n=32), 0.25, 0)


def test_validation_loss_falls_where_held_out_episodes_follow_the_training_rule(tmp_path) -> None:
    cfg = small_config("flow", 300)
    cfg.val_fraction, cfg.eval_every, cfg.log_every = 0.25, 50, 100
    data = Episodes(learnable=True)
    policy = train(cfg, data, tmp_path)
    rows = metrics(tmp_path)
    assert [int(r["step"]) for r in rows] == [50, 100, 150, 200, 250, 300]
    val = [float(r["val_loss"]) for r in rows]
    assert val[-1] < 0.5 * val[0], val
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["val_loss"] == pytest.approx(val[-1], rel=1e-5)
    assert len(meta["val_episodes"]) == 5
    # Comparable across evaluations: the same weights give the same number, to the bit.
    _, val_idx = split_episodes(data, cfg.val_fraction, cfg.seed)
    twice = [validation_loss(policy, data, val_idx, cfg, torch.device("cpu")) for _ in range(2)]
    assert twice[0] == twice[1] == pytest.approx(val[-1], rel=1e-5)


def test_validation_loss_on_held_out_episodes_shows_overfitting(tmp_path) -> None:
    cfg = small_config("flow", 300)
    cfg.val_fraction, cfg.eval_every, cfg.log_every = 0.25, 100, 100
    train(cfg, Episodes(), tmp_path)
    rows = metrics(tmp_path)
    assert [int(r["step"]) for r in rows] == [100, 200, 300]
    first, last = rows[0], rows[-1]
    assert float(last["loss"]) < float(first["loss"])  # it learns the training episodes
    assert float(last["val_loss"]) > 2 * float(last["loss"]), last  # and the held-out loss shows it,
    assert float(last["val_loss"]) > float(first["val_loss"])  # rising while the training loss falls
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_a_single_episode_trains_on_all_of_it_without_validation(tmp_path, capsys) -> None:
    cfg = small_config("flow", 20)
    cfg.val_fraction, cfg.eval_every, cfg.log_every = 0.25, 10, 10
    train(cfg, Episodes(n_episodes=1), tmp_path)
    assert "no validation loss: the dataset has one episode" in capsys.readouterr().out
    assert [r["val_loss"] for r in metrics(tmp_path)] == ["", ""]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["val_episodes"] == [] and meta["val_loss"] is None


DDP_SCRIPT = """
import os, sys, torch
sys.path.insert(0, {here!r})
from flow_policy_node.train.synthetic import BimodalDataset
from test_policy import small_config
from flow_policy_node.train.loop import train
policy = train(small_config("flow", 30), BimodalDataset(n=256), {out!r})
from safetensors.torch import save_file
weights = {{k: v.contiguous() for k, v in policy.state_dict().items()}}
save_file(weights, {out!r} + f"/rank{{os.environ['RANK']}}.safetensors")
"""


@pytest.mark.slow
def test_two_process_gloo_ddp_ends_with_identical_replicas(tmp_path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(here=str(HERE), out=str(tmp_path / "ckpt")))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node=2", "--master_addr=127.0.0.1", "--master_port=29533", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    a, b = (
        load_file(tmp_path / "ckpt" / "rank0.safetensors"),
        load_file(tmp_path / "ckpt" / "rank1.safetensors"),
    )
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_dimension_the_demos_hold_still_is_not_amplified() -> None:
    """Float noise on a held joint (3e-5 rad in bags) must stay near 0 once normalised."""
    from flow_policy_node.models.normalize import MIN_HALF_SPAN, Normalizer

    norm = Normalizer(low=[-1.0, -3e-5, 0.0], high=[1.0, 3e-5, 0.04])
    y = norm(torch.tensor([[1.0, 3e-5, 0.04], [-1.0, -3e-5, 0.0]]))
    np.testing.assert_allclose(y[:, 0].numpy(), [1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(y[:, 2].numpy(), [1.0, -1.0], atol=1e-6)  # a 4 cm gripper keeps its range
    assert float(y[:, 1].abs().max()) <= 3e-5 / MIN_HALF_SPAN + 1e-9
    x = torch.tensor([[0.3, 1e-5, 0.01]])
    np.testing.assert_allclose(norm.inverse(norm(x)).numpy(), x.numpy(), atol=1e-7)
