"""Action-chunk scheduling: where each new chunk takes over, and how it joins the last one.

Time is absolute (node clock, sim time under use_sim_time). A chunk predicted from an
observation taken at ``t_obs`` holds targets for ``t_obs + (k + 1) dt``, k = 0 .. H-1
(the Policy protocol). Inference takes a delay d, so by the time the chunk exists the
robot has already executed about d / dt steps of the previous plan; those steps are
committed and the new chunk may only take over after them:

    plan (committed) ─────────────●━━━━━━━━━━━━━━━━ (old, no longer executed)
    new chunk       t_obs ·····[k0]━━━━━━━━━━━━━━━━
                          <- d ->  stamp = t_obs + k0 dt >= now

Modes (``mode``):

- ``rtc`` (real-time chunking): the committed steps of the plan over the estimated delay
  are passed to the policy as ``prefix`` (K, D); the policy inpaints the rest of the
  chunk so that it continues them. The seam is then an ordinary step.
- ``ensemble`` (temporal ensembling, ACT): every time step's target is the weighted mean
  of all recent chunks that cover it, weights exp(-m i) with i = 0 for the oldest chunk.
- ``naive``: the new chunk replaces the plan from ``stamp`` on (for comparison).

The scheduler has no clock and no ROS: callers pass ``t_obs`` and ``now``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from flow_policy_node.control.jtc import interp

MODES = ("rtc", "ensemble", "naive")


@dataclass
class ChunkingConfig:
    mode: str = "rtc"
    dt: float = 0.1  # s between chunk steps (1 / policy fps)
    execution_horizon: int = 4  # steps of a chunk that run before the next one takes over
    # rtc: steps beyond the estimated delay that are also fixed as the prefix. Covers delay
    # jitter and, more importantly, gives the inpainting enough to go on: measured on a
    # bimodal policy, a 3-step prefix did not change which mode the free steps took (13/20
    # either way), an 8-step one did (seam jump 4-5x median step at 1, ~1-2.5x at 4). The
    # price: a new observation changes the motion only this many steps after the delay.
    delay_margin_steps: int = 4
    ensemble_decay: float = 0.1  # m in exp(-m i), i = 0 for the oldest chunk
    delay_window: int = 20  # inference delays remembered for the estimate

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown chunk blending mode {self.mode!r}; choose one of {MODES}")
        if self.dt <= 0 or self.execution_horizon < 1:
            raise ValueError(
                f"need dt > 0 and execution_horizon >= 1, got {self.dt}, {self.execution_horizon}"
            )


@dataclass
class Segment:
    """What to publish: ``positions[m]`` is the target at ``stamp + (m + 1) dt``.

    start: (D,) the target at ``stamp`` (where the controller will be when it takes over).
    positions: (M, D).
    """

    stamp: float
    start: np.ndarray
    positions: np.ndarray
    first_step: int  # k0: index of positions[0] in the chunk
    fresh_from: int = 0  # index in positions of the first step not fixed by the prefix (the seam)


class ChunkScheduler:
    def __init__(self, cfg: ChunkingConfig, horizon: int) -> None:
        self.cfg, self.horizon = cfg, horizon
        self.delays: deque[float] = deque(maxlen=cfg.delay_window)
        self.reset()

    def reset(self) -> None:
        """Forget the plan and the chunk history (delays are kept: they describe the machine)."""
        self.plan_times = np.zeros(0)
        self.plan_positions: np.ndarray | None = None
        self.last_stamp = -math.inf
        self.history: list[tuple[np.ndarray, np.ndarray]] = []  # raw chunks: (times (H,), (H, D))

    # --- delay ------------------------------------------------------------------------------

    def record_delay(self, seconds: float) -> None:
        self.delays.append(max(0.0, float(seconds)))

    @property
    def delay_estimate(self) -> float:
        """Seconds; the largest recent delay (a late chunk costs more than an early one)."""
        return max(self.delays) if self.delays else 0.0

    def committed_steps(self) -> int:
        """K: prefix length, the steps that will have run when the chunk arrives plus the margin."""
        delay = math.ceil(self.delay_estimate / self.cfg.dt)
        # The margin never eats into the execution horizon: each chunk keeps at least that
        # many fresh steps (RTC's d <= H - s); the delay steps themselves are not negotiable.
        k = max(delay, min(delay + self.cfg.delay_margin_steps, self.horizon - self.cfg.execution_horizon))
        return max(0, min(k, self.horizon - 1))

    # --- plan -------------------------------------------------------------------------------

    @property
    def has_plan(self) -> bool:
        return self.plan_positions is not None

    @property
    def plan_end(self) -> float:
        return float(self.plan_times[-1]) if self.has_plan else -math.inf

    def committed(self, times: np.ndarray) -> np.ndarray:
        """(N, D) plan targets at ``times`` (linear between points, held after the end)."""
        assert self.plan_positions is not None
        return interp(times, self.plan_times, self.plan_positions)

    def due(self, now: float) -> bool:
        """Whether to start the next inference so that its chunk takes over on time."""
        if not self.has_plan:
            return True
        takeover = self.last_stamp + self.cfg.execution_horizon * self.cfg.dt
        return now >= takeover - self.delay_estimate or now >= self.plan_end - self.delay_estimate

    def prefix(self, t_obs: float) -> np.ndarray | None:
        """(K, D) committed targets for the first K steps of a chunk observed at ``t_obs`` (rtc only)."""
        if self.cfg.mode != "rtc" or not self.has_plan:
            return None
        k = self.committed_steps()
        times = t_obs + self.cfg.dt * np.arange(1, k + 1)
        times = times[times <= self.plan_end]  # never invent commitments past the plan
        return self.committed(times) if len(times) else None

    # --- a new chunk ------------------------------------------------------------------------

    def schedule(
        self, chunk: np.ndarray, t_obs: float, now: float, current: np.ndarray, prefix_len: int = 0
    ) -> Segment | None:
        """The part of ``chunk`` (H, D) still in the future at ``now``, joined per ``mode``.

        current: (D,) measured joint positions, the start when there is no plan yet.
        prefix_len: K, the length of the prefix the chunk was inpainted from (rtc).
        Returns None when the whole chunk is already in the past (inference took > H dt).
        """
        dt = self.cfg.dt
        times = t_obs + dt * np.arange(1, len(chunk) + 1)
        k0 = max(0, math.ceil((now - t_obs) / dt - 1e-9))
        if k0 >= len(chunk):
            return None
        stamp = t_obs + k0 * dt
        start = self.committed(np.array([stamp]))[0] if self.has_plan else np.asarray(current, np.float64)
        positions = np.asarray(chunk[k0:], np.float64)
        if self.cfg.mode == "ensemble":
            self.history = [(t, p) for t, p in self.history if t[-1] > stamp]
            self.history.append((times, np.asarray(chunk, np.float64)))
            positions = self._ensemble(times[k0:])
        elif self.cfg.mode == "rtc" and self.has_plan:
            positions = self._soft_mask(positions, times[k0:], max(prefix_len, k0))
        return Segment(stamp, start, positions, k0, fresh_from=max(0, prefix_len - k0))

    def _soft_mask(self, positions: np.ndarray, times: np.ndarray, frozen: int) -> np.ndarray:
        """Ease from the old plan into the new chunk over the rest of their overlap.

        Real-time chunking's soft mask (Black et al. 2025) weights the old chunk beyond the
        frozen prefix with weights that decay to 0 across the overlap. The guided prefix
        fixes what must not change; this keeps a new chunk that still disagrees with the
        plan beyond it (measured: often, with short prefixes) from turning that into a jump.
        We apply the mask to the output, with a cosine ramp w_j = (1 + cos(pi (j + 1) /
        (L + 1))) / 2 over the L overlapping free steps: it starts at ~1, so the first free
        step continues the plan (the paper's exponential starts near 0.6 for short overlaps).
        positions: (M, D) chunk steps H-M .. H-1; times: (M,); frozen: first free chunk step.
        """
        covered = times <= self.plan_end + 1e-9
        first_free = max(0, frozen - (self.horizon - len(positions)))  # positions[0] is step H - M
        last = int(np.nonzero(covered)[0].max()) if covered.any() else -1
        if last < first_free:
            return positions
        idx = np.arange(first_free, last + 1)
        n = len(idx)
        w = (0.5 * (1 + np.cos(np.pi * np.arange(1, n + 1) / (n + 1))))[:, None]
        out = positions.copy()
        out[idx] = w * self.committed(times[idx]) + (1 - w) * positions[idx]
        return out

    def _ensemble(self, times: np.ndarray) -> np.ndarray:
        """Weighted mean over the chunks (oldest first) that cover each time."""
        out = np.zeros((len(times), self.history[-1][1].shape[1]))
        for n, tau in enumerate(times):
            total, acc, i = 0.0, 0.0, 0
            for ct, cp in self.history:
                if ct[0] - 1e-9 <= tau <= ct[-1] + 1e-9:
                    w = math.exp(-self.cfg.ensemble_decay * i)
                    acc = acc + w * interp(tau, ct, cp)
                    total += w
                    i += 1
            out[n] = acc / total
        return out

    def commit(self, segment: Segment, now: float) -> None:
        """Make ``segment`` (after safety limits) the plan from its stamp on."""
        dt = self.cfg.dt
        new_t = segment.stamp + dt * np.arange(len(segment.positions) + 1)
        new_p = np.vstack([segment.start[None], segment.positions])
        if self.has_plan:
            assert self.plan_positions is not None
            keep = (self.plan_times < segment.stamp - 1e-9) & (self.plan_times >= now - 2 * dt)
            new_t = np.concatenate([self.plan_times[keep], new_t])
            new_p = np.vstack([self.plan_positions[keep], new_p])
        self.plan_times, self.plan_positions = new_t, new_p
        self.last_stamp = segment.stamp


def seam_jump_ratio(positions: np.ndarray, seams: np.ndarray) -> float:
    """Max joint jump across chunk seams / median in-chunk step (1 = as smooth as inside a chunk).

    positions: (N, D) executed targets on the control grid; seams: (N - 1,) bool, True where
    step n -> n + 1 crosses from one chunk to the next.
    """
    steps = np.abs(np.diff(positions, axis=0)).max(axis=1)
    inner = steps[~seams]
    scale = float(np.median(inner)) if len(inner) else 1.0
    return float(steps[seams].max() / max(scale, 1e-9)) if seams.any() else 0.0


@dataclass
class Rollout:
    """Executed targets on the control grid of a :func:`simulate` run.

    positions: (N, D); seams: (N - 1,) True where step n -> n + 1 changes chunk;
    inference_s: wall time of each policy call.
    """

    positions: np.ndarray
    seams: np.ndarray
    inference_s: list[float]

    @property
    def seam_jump(self) -> float:
        return seam_jump_ratio(self.positions, self.seams)


def simulate(
    policy,
    cfg: ChunkingConfig,
    start: np.ndarray,
    make_obs,
    delays: list[float],
    frame_dt: float | None = None,
    seed: int = 0,
) -> Rollout:
    """Run the scheduler against ``policy`` in virtual time, one chunk per entry of ``delays``.

    The robot tracks the plan exactly; cameras deliver a frame every ``frame_dt`` (default
    dt: one grid for all chunks, so no interpolation blurs a seam); inference of chunk i
    takes ``delays[i]`` seconds of virtual time (injected, so runs are reproducible on any
    machine). ``make_obs(state (D,), t)`` builds the Observation. Scheduling is measured
    raw (no safety limits, which would hide jumps).
    """
    import time

    frame_dt = frame_dt or cfg.dt
    sched = ChunkScheduler(cfg, policy.horizon)
    segments: list[Segment] = []
    t, inference = 0.0, []
    for i, delay in enumerate(delays):
        while not sched.due(t):
            t += frame_dt
        state = sched.committed(np.array([t]))[0] if sched.has_plan else np.asarray(start, np.float64)
        tic = time.perf_counter()
        prefix = sched.prefix(t)
        chunk = policy.predict(make_obs(state, t), prefix=prefix, seed=seed + i)
        inference.append(time.perf_counter() - tic)
        sched.record_delay(delay)
        segment = sched.schedule(chunk, t, t + delay, state, 0 if prefix is None else len(prefix))
        if segment is not None:
            sched.commit(segment, t + delay)
            segments.append(segment)
        t = math.ceil((t + delay) / frame_dt - 1e-9) * frame_dt  # the next frame after the chunk
    # Sample what ran: at each grid time the newest segment that has started. A seam is the
    # step into a segment's first freshly generated point (after its prefix, if any).
    grid = np.arange(segments[0].stamp, segments[-1].stamp, cfg.dt)
    out, seam = np.zeros((len(grid), len(start))), np.zeros(len(grid), bool)
    for n, tau in enumerate(grid):
        s = next(s for s in reversed(segments) if s.stamp <= tau + 1e-9)
        times = s.stamp + cfg.dt * np.arange(len(s.positions) + 1)
        full = np.vstack([s.start[None], s.positions])
        out[n] = interp(tau, times, full)
        seam[n] = abs(tau - times[s.fresh_from + 1]) < 1e-6
    return Rollout(out, seam[1:], inference)
