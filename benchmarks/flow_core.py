"""Flow-matching core: chunk latency against the naive and diffusion ways, and quality.

    python benchmarks/flow_core.py      # writes benchmarks/results/flow_core.json

Latency: the default image+state policy (96x96 front camera, ResNet-style encoder,
MLP velocity head, H=16 x 7), batch 1, 2 CPU threads, median of 50 chunks. Quality: the
conditional bimodal task (same observation, go left or right round an obstacle): the
fraction of samples near the rarer mode (0.5 is perfect, 0 is mode collapse or
averaging), and the mean RMS distance of samples to their nearest mode.
All numbers come from one run on one machine.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from flow_policy_node.flow import solve
from flow_policy_node.models.encoders import ImageEncoderConfig, ObservationEncoderConfig
from flow_policy_node.models.policy import PolicyConfig, make_policy
from flow_policy_node.models.velocity import VelocityNetConfig
from flow_policy_node.observation import ACTION, STATE, Observation
from flow_policy_node.train.loop import TrainConfig, train
from flow_policy_node.train.synthetic import BimodalDataset

OUT = Path(__file__).parent / "results" / "flow_core.json"


def timed(fn, n: int = 50) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def latency() -> dict[str, float]:
    stats = {STATE: {"min": [-1.0] * 7, "max": [1.0] * 7}, ACTION: {"min": [-1.0] * 7, "max": [1.0] * 7}}
    obs = Observation(
        state=np.zeros(7, np.float32), images={"front": np.zeros((96, 96, 3), np.uint8)}, task="t", goal=None
    )
    out = {}
    for name, kind, extra in [
        ("chunk_ms_p50", "flow", {}),
        ("chunk_ms_p50_regression", "regression", {}),
        ("chunk_ms_p50_ddim10", "diffusion", {"diffusion_sampler": "ddim", "diffusion_sample_steps": 10}),
        ("chunk_ms_p50_ddpm100", "diffusion", {"diffusion_sampler": "ddpm"}),
    ]:
        cfg = PolicyConfig(kind=kind, encoder=ObservationEncoderConfig(cameras=("front",)), **extra)
        policy = make_policy(cfg, stats, ["t"]).eval()
        out[name] = timed(lambda p=policy: p.predict(obs, seed=0), n=20 if "ddpm" in name else 50)
        if name == "chunk_ms_p50":
            batch = policy.observation_batch(obs)

            @torch.inference_mode()
            def naive(p=policy, cfg=cfg, batch=batch) -> None:
                noise = torch.randn(1, cfg.horizon, cfg.action_dim)

                def v(x, t):
                    cond, tokens, _ = p.encode(batch)  # the observation re-encoded at every ODE step
                    return p.head(x, t, cond, tokens)

                solve(v, noise, cfg.steps, cfg.solver)

            out["chunk_ms_p50_encode_every_step"] = timed(naive)
    return out


def bimodal_quality(policy, steps: int | None = None, n: int = 400) -> tuple[float, float]:
    data = BimodalDataset()
    if steps is not None:
        policy.cfg.steps = steps
    batch = torch.utils.data.default_collate([data[0]] * n)
    chunks = policy.sample(batch, torch.Generator().manual_seed(0)).numpy()[:, :, :2]
    modes = [BimodalDataset.mode(side=s)[:, :2] for s in (1, -1)]
    dist = np.stack([np.sqrt(((chunks - m) ** 2).mean(axis=(1, 2))) for m in modes], axis=1)
    near = dist.min(axis=1) < 0.25
    counts = [(near & (dist.argmin(axis=1) == i)).mean() for i in range(2)]
    return float(min(counts)), float(dist.min(axis=1).mean())


def quality(tmp: Path) -> dict:
    data = BimodalDataset()
    policies = {}
    for kind in ("flow", "regression", "diffusion"):
        cfg = TrainConfig(
            policy=PolicyConfig(
                kind=kind,
                encoder=ObservationEncoderConfig(cameras=(), token_dim=32, image=ImageEncoderConfig(width=8)),
                velocity=VelocityNetConfig(hidden=256),
                diffusion_sampler="ddpm",
            ),
            steps=300 if kind == "regression" else 1200,
            batch_size=256,
            lr=2e-3,
            warmup_steps=20,
            ema_decay=0.9,
        )
        policies[kind] = train(cfg, data, tmp / kind)
    out = {}
    out["bimodal_min_mode_fraction_flow"], out["bimodal_error_flow"] = bimodal_quality(policies["flow"], 10)
    out["bimodal_min_mode_fraction_regression"], out["bimodal_error_regression"] = bimodal_quality(
        policies["regression"]
    )
    out["bimodal_min_mode_fraction_ddpm100"], out["bimodal_error_ddpm100"] = bimodal_quality(
        policies["diffusion"]
    )
    policies["diffusion"].cfg.diffusion_sampler = "ddim"
    out["bimodal_min_mode_fraction_ddim10"], out["bimodal_error_ddim10"] = bimodal_quality(
        policies["diffusion"]
    )
    out["steps_vs_quality"] = {
        str(s): dict(zip(("min_mode_fraction", "error"), bimodal_quality(policies["flow"], s), strict=True))
        for s in (1, 2, 4, 10)
    }
    return out


def main() -> None:
    import tempfile

    torch.set_num_threads(2)
    torch.manual_seed(0)
    results = {"torch_threads": 2, **latency()}
    with tempfile.TemporaryDirectory() as tmp:
        results.update(quality(Path(tmp)))
    results["speedup_vs_ddpm100"] = results["chunk_ms_p50_ddpm100"] / results["chunk_ms_p50"]
    results["speedup_vs_encode_every_step"] = (
        results["chunk_ms_p50_encode_every_step"] / results["chunk_ms_p50"]
    )
    results["targets"] = {
        "chunk_ms_p50 <= 15": results["chunk_ms_p50"] <= 15,
        ">= 5x faster than ddpm100": results["speedup_vs_ddpm100"] >= 5,
        "flow quality >= ddpm100": results["bimodal_error_flow"] <= results["bimodal_error_ddpm100"] * 1.05,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"{'metric':40s} value")
    for k, v in results.items():
        if not isinstance(v, dict):
            print(f"{k:40s} {v:.3f}" if isinstance(v, float) else f"{k:40s} {v}")
    print(json.dumps(results["steps_vs_quality"], indent=1))
    print(json.dumps(results["targets"], indent=1))


if __name__ == "__main__":
    main()
