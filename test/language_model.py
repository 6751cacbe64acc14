"""The real sentence-embedding model for tests, loaded once, and a loader the test releases."""

from __future__ import annotations

import functools
import threading

from flow_policy_node.control.commands import Embedder, minilm_embedder


@functools.cache
def real_embedder() -> Embedder:
    return minilm_embedder()


class GatedLoader:
    """A loader that hands over the real embedder only once the test opens ``gate``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder, self.gate, self.started = embedder, threading.Event(), threading.Event()

    def __call__(self) -> Embedder:
        self.started.set()
        if not self.gate.wait(timeout=120):
            raise TimeoutError("the test never opened the gate")
        return self.embedder
