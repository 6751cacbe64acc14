"""Free-text command resolution on the labelled test set (test/data/commands.tsv).

    python benchmarks/commands.py          # test set -> results/commands.json
    python benchmarks/commands.py --dev    # the development list, with a threshold x margin sweep

The vocabulary is every task's command (what a checkpoint trained on all tasks has). Valid
lines must resolve to their task, REFUSE lines must be refused. The development list
(test/data/commands_dev.tsv) is the one to tune lexicons, phrasings, threshold and margin
on; the test set is only scored.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from flow_policy_node.control.commands import (
    CommandResolver,
    Embedder,
    minilm_embedder,
    read_command_set,
    score_command_set,
)
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.tasks import TASKS

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).parent.parent / "test" / "data"
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
MARGINS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16)


def memoised(embed: Embedder) -> Embedder:
    """The same vectors for a text seen before: a sweep re-resolves every line many times."""
    cache: dict[str, np.ndarray] = {}

    def embed_cached(texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in cache]
        if missing:
            cache.update(zip(missing, embed(missing), strict=True))
        return np.stack([cache[t] for t in texts])

    return embed_cached


def sweep(resolver: CommandResolver, rows: list[tuple[str, str]]) -> None:
    """Valid / refused accuracy for each threshold and margin (the defaults are chosen from this)."""
    print("threshold x margin: valid accuracy / refusal accuracy")
    print("      " + "".join(f"{m:>12.2f}" for m in MARGINS))
    for threshold in THRESHOLDS:
        cells = []
        for margin in MARGINS:
            resolver.threshold, resolver.margin = threshold, margin
            score = score_command_set(resolver, rows)
            cells.append(f"{score.valid_accuracy:.2f}/{score.refusal_accuracy:.2f}")
        print(f"{threshold:>6.2f}" + "".join(f"{c:>12}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dev", action="store_true", help="score the development list; write nothing")
    args = parser.parse_args()
    path = DATA / ("commands_dev.tsv" if args.dev else "commands.tsv")
    rows = read_command_set(path)
    cfg = PolicyNodeConfig()
    load_average = os.getloadavg()[0]  # the timings below depend on how busy the machine is
    t0 = time.perf_counter()
    embedder = minilm_embedder()
    load_s = time.perf_counter() - t0
    resolver = CommandResolver(
        [t.command for t in TASKS.values()], embedder, cfg.command_threshold, cfg.command_margin
    )
    score = score_command_set(resolver, rows)
    results = {
        "set": str(path.relative_to(DATA.parent.parent)),
        "lines": score.lines,
        "valid_lines": score.valid,
        "refusal_lines": score.refusals,
        "valid_accuracy": round(score.valid_accuracy, 4),
        "refusal_accuracy": round(score.refusal_accuracy, 4),
        "threshold": cfg.command_threshold,
        "margin": cfg.command_margin,
        "model_load_s": round(load_s, 2),
        "resolve_ms_p50": round(float(np.median(score.resolve_ms)), 2),
        "load_average_1min": round(load_average, 2),
        "cpu_count": os.cpu_count(),
        "misresolved": [{k: w[k] for k in ("text", "expected", "got")} for w in score.wrong],
    }
    if args.dev:
        sweep(CommandResolver(resolver.tasks, memoised(embedder)), rows)
    for w in score.wrong:
        print(f"{w['text']!r}: expected {w['expected']}, got {w['got']} -- {w['message'][:160]}")
    print(json.dumps({k: v for k, v in results.items() if k != "misresolved"}, indent=2))
    if not args.dev:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "commands.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
