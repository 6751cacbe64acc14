"""The latest observation per stream, and when it may not be used.

Streams: ``joints`` (positions (D,) in the checkpoint's joint order) and one per camera
((h, w, 3) uint8 RGB already at the model's size). Callbacks store; the inference worker
takes a :meth:`ObservationCache.snapshot`. A stream is unusable when it has never
delivered, when its newest message was bad (a NaN joint, an unknown encoding: the error
is kept until a good message replaces it), or when its stamp is older than ``max_age``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from flow_policy_node.observation import Observation

JOINTS = "joints"


@dataclass
class _Entry:
    value: np.ndarray | None = None
    stamp: float = 0.0
    error: str = ""
    count: int = 0


class ObservationCache:
    """Thread-safe store of the newest joint state and camera images."""

    def __init__(self, cameras: tuple[str, ...], max_age: float) -> None:
        self.cameras, self.max_age = tuple(cameras), max_age
        self._lock = threading.Lock()
        self._entries = {s: _Entry() for s in (JOINTS, *self.cameras)}
        self.goal: np.ndarray | None = None

    @property
    def primary(self) -> str:
        """The stream whose new messages trigger inference: the first camera, else joints."""
        return self.cameras[0] if self.cameras else JOINTS

    def put(self, stream: str, value: np.ndarray, stamp: float) -> None:
        with self._lock:
            e = self._entries[stream]
            e.value, e.stamp, e.error = value, stamp, ""
            e.count += 1

    def put_error(self, stream: str, error: str) -> None:
        """The newest message on ``stream`` was unusable: hold until a good one arrives."""
        with self._lock:
            self._entries[stream].error = error

    def count(self, stream: str) -> int:
        with self._lock:
            return self._entries[stream].count

    def clear(self) -> None:
        with self._lock:
            for e in self._entries.values():
                e.value, e.error = None, ""

    def snapshot(self, now: float) -> tuple[Observation | None, float, str]:
        """(observation or None, age of the oldest stream in s (-1 if any is missing), problem).

        The observation is None exactly when ``problem`` is not empty.
        """
        with self._lock:
            entries = dict(self._entries)
            missing = [s for s, e in entries.items() if e.value is None]
            errors = [f"{s}: {e.error}" for s, e in entries.items() if e.error]
            ages = {s: now - e.stamp for s, e in entries.items() if e.value is not None}
            if errors:
                return None, max(ages.values(), default=-1.0), "; ".join(errors)
            if missing:
                return None, -1.0, f"no {' / '.join(missing)} received yet"
            future = {s: -a for s, a in ages.items() if a < -self.max_age}
            if future:
                worst = ", ".join(f"{s} {a:.2f} s" for s, a in future.items())
                return (
                    None,
                    -1.0,
                    (
                        f"observations stamped in the future ({worst} ahead of this node's clock): "
                        "do the publishers and this node agree on use_sim_time?"
                    ),
                )
            stale = {s: a for s, a in ages.items() if a > self.max_age}
            age = max(ages.values())
            if stale:
                worst = ", ".join(f"{s} {a:.2f} s" for s, a in stale.items())
                return (
                    None,
                    age,
                    f"stale observations: {worst} old (max_observation_age {self.max_age:.2f} s)",
                )
            obs = Observation(
                state=entries[JOINTS].value.astype(np.float32),
                images={c: entries[c].value for c in self.cameras},
                goal=None if self.goal is None else self.goal.copy(),
                stamp=entries[JOINTS].stamp,  # chunk step k is at stamp + (k + 1) dt
            )
            return obs, age, ""
