"""FlowPolicy and the two baselines (regression, diffusion) on the same encoders.

All three share ObservationEncoder and the velocity-network architecture, so comparisons
differ only in the generative method:

- FlowPolicy: conditional flow matching; sampling integrates v(x, t | obs) from noise
  (t = 0) to an action chunk (t = 1) with a fixed-step ODE solver.
- RegressionPolicy: the same network fed x = 0, t = 0, trained with MSE on the chunk.
  It predicts the conditional mean, which averages distinct modes.
- DiffusionPolicy: DDPM (epsilon prediction, squared-cosine schedule) with DDPM or DDIM
  sampling (t input = k / K).

Batches use the keys of flow_policy_node.observation. Every policy implements the
``Policy`` protocol: ``predict(obs, prefix=None, seed=None) -> (H, D)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from flow_policy_node.flow import inpainting_velocity, make_path, masked_mse, sample_time, solve
from flow_policy_node.models.encoders import (
    ImageEncoderConfig,
    ObservationEncoder,
    ObservationEncoderConfig,
)
from flow_policy_node.models.normalize import Normalizer
from flow_policy_node.models.velocity import VelocityNetConfig, make_velocity_net
from flow_policy_node.observation import (
    ACTION,
    ACTION_IS_PAD,
    GOAL,
    STATE,
    TASK_INDEX,
    Observation,
    image_key,
)

KINDS = ("flow", "regression", "diffusion")


@dataclass
class PolicyConfig:
    kind: str = "flow"
    horizon: int = 16
    action_dim: int = 7
    fps: float = 10.0
    encoder: ObservationEncoderConfig = field(default_factory=ObservationEncoderConfig)
    velocity: VelocityNetConfig = field(default_factory=VelocityNetConfig)
    # flow matching
    path: str = "linear"
    time_sampling: str = "beta"
    solver: str = "euler"
    steps: int = 10
    guidance_beta: float = 20.0  # cap of the real-time-chunking guidance weight
    # diffusion
    diffusion_train_steps: int = 100
    diffusion_sampler: str = "ddim"  # ddpm | ddim
    diffusion_sample_steps: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PolicyConfig:
        d = dict(d)
        enc = dict(d.pop("encoder", {}))
        # Checkpoints written while the encoder had an unused history option carry it as 1.
        if enc.pop("n_obs_steps", 1) != 1:
            raise ValueError("observation history (encoder.n_obs_steps > 1) is not supported")
        image = dict(enc.get("image", {}))
        if image and "stem_stride" not in image:  # written before these fields: the old encoder
            image.update(stem_stride=2, film=False)
        if "blocks" in image:
            image["blocks"] = tuple(image["blocks"])
        enc["image"] = ImageEncoderConfig(**image)
        enc["cameras"] = tuple(enc.get("cameras", ()))
        enc["image_goal_tasks"] = tuple(enc.get("image_goal_tasks", ()))
        vel = dict(d.pop("velocity", {}))
        if "unet_channels" in vel:
            vel["unet_channels"] = tuple(vel["unet_channels"])
        return cls(encoder=ObservationEncoderConfig(**enc), velocity=VelocityNetConfig(**vel), **d)


class BasePolicy(nn.Module):
    """Encoder + head + normalisers; subclasses define ``loss`` and ``_sample``."""

    def __init__(self, cfg: PolicyConfig, stats: dict[str, dict[str, list[float]]], tasks: list[str]) -> None:
        super().__init__()
        self.cfg = cfg
        self.tasks = list(tasks)
        self.encoder = ObservationEncoder(cfg.encoder, self.tasks)
        self.head = make_velocity_net(
            cfg.velocity, cfg.horizon, cfg.action_dim, self.encoder.cond_dim, cfg.encoder.token_dim
        )
        self.action_norm = Normalizer.from_stats(stats[ACTION])
        self.state_norm = Normalizer.from_stats(stats[STATE])

    @property
    def horizon(self) -> int:
        return self.cfg.horizon

    @property
    def fps(self) -> float:
        return self.cfg.fps

    def encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor | None]:
        """(cond, tokens, goal point used) of ObservationEncoder, on the normalised state."""
        obs = dict(batch)
        obs[STATE] = self.state_norm(batch[STATE])
        return self.encoder(obs)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """The training loss: calling the module (not ``loss``) lets DDP all-reduce gradients."""
        return self.loss(batch)

    def loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def _sample(
        self,
        cond: Tensor,
        tokens: Tensor,
        noise: Tensor,
        prefix: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def sample(
        self,
        batch: dict[str, Tensor],
        generator: torch.Generator | None = None,
        prefix: Tensor | None = None,
    ) -> Tensor:
        """(B, H, D) action chunks in robot units.

        prefix: (B, K, D) actions (robot units) already committed for the first K steps.
        """
        cond, tokens, _ = self.encode(batch)
        b = cond.shape[0]
        noise = torch.randn(
            b,
            self.cfg.horizon,
            self.cfg.action_dim,
            generator=generator,
            device=cond.device,
            dtype=cond.dtype,
        )
        norm_prefix = self.action_norm(prefix) if prefix is not None else None
        return self.action_norm.inverse(self._sample(cond, tokens, noise, norm_prefix, generator))

    def observation_batch(self, obs: Observation) -> dict[str, Tensor]:
        """A batch of one from a live observation (images (h, w, 3) uint8 -> (1, 3, h, w))."""
        device = self.action_norm.center.device
        batch = {STATE: torch.as_tensor(obs.state, dtype=torch.float32, device=device)[None]}
        for cam in self.cfg.encoder.cameras:
            img = torch.as_tensor(obs.images[cam], device=device).permute(2, 0, 1).float() / 255.0
            batch[image_key(cam)] = img[None]
        goal = obs.goal if obs.goal is not None else np.zeros(3, np.float32)
        batch[GOAL] = torch.as_tensor(goal, dtype=torch.float32, device=device)[None]
        batch[TASK_INDEX] = torch.tensor([self.task_index(obs.task)], device=device)
        return batch

    @torch.inference_mode()
    def goal_point(self, obs: Observation) -> np.ndarray | None:
        """(3,) the goal point the policy acts on: found in the images for its image-goal
        tasks, else the observation's own (None when the policy takes no goal)."""
        _, _, goal = self.encode(self.observation_batch(obs))
        return None if goal is None else goal[0].cpu().numpy()

    def task_index(self, task: str) -> int:
        try:
            return self.tasks.index(task)
        except ValueError:
            raise ValueError(f"task {task!r} is not one this policy was trained on: {self.tasks}") from None

    def predict(
        self, obs: Observation, *, prefix: np.ndarray | None = None, seed: int | None = None
    ) -> np.ndarray:
        """(H, D) float32 chunk for one observation (the Policy protocol)."""
        gen = None
        if seed is not None:
            gen = torch.Generator(device=self.action_norm.center.device).manual_seed(seed)
        pre = None
        if prefix is not None and len(prefix):
            pre = torch.as_tensor(
                np.asarray(prefix), dtype=torch.float32, device=self.action_norm.center.device
            )[None]
        return self.sample(self.observation_batch(obs), gen, pre)[0].cpu().numpy().astype(np.float32)


class FlowPolicy(BasePolicy):
    def __init__(self, cfg: PolicyConfig, stats, tasks) -> None:
        super().__init__(cfg, stats, tasks)
        self.path = make_path(cfg.path)

    def loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        x1 = self.action_norm(batch[ACTION])
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        t = sample_time(self.cfg.time_sampling, x1.shape[0], generator, device=x1.device)
        ps = self.path.sample(x0, x1, t)
        cond, tokens, goal = self.encode(batch)
        loss = masked_mse(self.head(ps.x_t, t, cond, tokens), ps.dx_t, batch.get(ACTION_IS_PAD))
        return loss + self.encoder.goal_loss(batch, goal)

    def _sample(self, cond, tokens, noise, prefix, generator):
        def velocity(x: Tensor, t: Tensor) -> Tensor:
            return self.head(x, t, cond, tokens)

        if prefix is None:
            return solve(velocity, noise, self.cfg.steps, self.cfg.solver)
        # Real-time chunking: guidance makes the free steps continue the committed prefix,
        # which then is set exactly, because the robot executes it whatever the policy says.
        guided = inpainting_velocity(self.path, velocity, prefix, self.cfg.guidance_beta)
        x = solve(guided, noise, self.cfg.steps, self.cfg.solver)
        x[:, : prefix.shape[1]] = prefix
        return x


class RegressionPolicy(BasePolicy):
    def _predict(self, cond: Tensor, tokens: Tensor) -> Tensor:
        b = cond.shape[0]
        x = torch.zeros(b, self.cfg.horizon, self.cfg.action_dim, device=cond.device, dtype=cond.dtype)
        return self.head(x, torch.zeros(b, device=cond.device, dtype=cond.dtype), cond, tokens)

    def loss(self, batch, generator=None):
        cond, tokens, goal = self.encode(batch)
        target = self.action_norm(batch[ACTION])
        loss = masked_mse(self._predict(cond, tokens), target, batch.get(ACTION_IS_PAD))
        return loss + self.encoder.goal_loss(batch, goal)

    def _sample(self, cond, tokens, noise, prefix, generator):
        out = self._predict(cond, tokens)
        if prefix is not None:
            out = out.clone()
            out[:, : prefix.shape[1]] = prefix
        return out


class DiffusionPolicy(BasePolicy):
    def __init__(self, cfg: PolicyConfig, stats, tasks) -> None:
        super().__init__(cfg, stats, tasks)
        k = cfg.diffusion_train_steps
        # Squared-cosine schedule (Nichol & Dhariwal), as in Diffusion Policy.
        s = torch.arange(k + 1, dtype=torch.float64) / k
        f = torch.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        alphas_cum = torch.cumprod(1 - betas, 0)
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas_cum", alphas_cum.float())

    def loss(self, batch, generator=None):
        x1 = self.action_norm(batch[ACTION])
        b = x1.shape[0]
        k = torch.randint(0, self.cfg.diffusion_train_steps, (b,), generator=generator, device=x1.device)
        eps = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        a = self.alphas_cum[k].view(b, 1, 1)
        x_k = a.sqrt() * x1 + (1 - a).sqrt() * eps
        cond, tokens, goal = self.encode(batch)
        pred = self.head(x_k, k.float() / self.cfg.diffusion_train_steps, cond, tokens)
        return masked_mse(pred, eps, batch.get(ACTION_IS_PAD)) + self.encoder.goal_loss(batch, goal)

    def _sample(self, cond, tokens, noise, prefix, generator):
        kk = self.cfg.diffusion_train_steps
        x = noise
        b = x.shape[0]
        if self.cfg.diffusion_sampler == "ddpm":
            timesteps = list(range(kk - 1, -1, -1))
        else:
            timesteps = np.linspace(kk - 1, 0, self.cfg.diffusion_sample_steps).round().astype(int).tolist()
        for i, k in enumerate(timesteps):
            a = self.alphas_cum[k]
            eps = self.head(x, torch.full((b,), k / kk, device=x.device, dtype=x.dtype), cond, tokens)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1.5, 1.5)
            if self.cfg.diffusion_sampler == "ddpm":
                a_prev = self.alphas_cum[k - 1] if k > 0 else torch.ones_like(a)
                beta = self.betas[k]
                mean = (a_prev.sqrt() * beta / (1 - a)) * x0 + (
                    (1 - beta).sqrt() * (1 - a_prev) / (1 - a)
                ) * x
                if k > 0:
                    var = beta * (1 - a_prev) / (1 - a)
                    z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                    x = mean + var.sqrt() * z
                else:
                    x = mean
            else:  # DDIM, eta = 0
                a_prev = self.alphas_cum[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.ones_like(a)
                eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
                x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
            if prefix is not None:
                kp = prefix.shape[1]
                x[:, :kp] = prefix if i + 1 == len(timesteps) else x[:, :kp]
        return x


POLICIES: dict[str, type[BasePolicy]] = {
    "flow": FlowPolicy,
    "regression": RegressionPolicy,
    "diffusion": DiffusionPolicy,
}


def make_policy(cfg: PolicyConfig, stats: dict, tasks: list[str]) -> BasePolicy:
    if cfg.kind not in POLICIES:
        raise ValueError(f"unknown policy kind {cfg.kind!r}; choose one of {KINDS}")
    return POLICIES[cfg.kind](cfg, stats, tasks)
