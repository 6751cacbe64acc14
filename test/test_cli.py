"""Issue 16: the `flow-policy` command line says what exists and takes its defaults from the
configuration dataclasses, not from copies of them."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from flow_policy_node.cli import build_parser

REPO = Path(__file__).resolve().parent.parent


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices[name]


def commands() -> set[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_every_command_the_docs_and_the_code_mention_exists() -> None:
    files = [REPO / "README.md", REPO / "Makefile", *(REPO / "docs").glob("*.md")]
    files += [*(REPO / "flow_policy_node").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    mentioned: dict[str, set[str]] = {}
    for path in files:
        for name in re.findall(r"\bflow-policy ([a-z][a-z-]*)(?![\w-])", path.read_text()):
            mentioned.setdefault(name, set()).add(str(path.relative_to(REPO)))
    assert {"demo", "convert", "train", "run"} <= set(mentioned)  # the scan sees the docs
    unknown = {name: where for name, where in mentioned.items() if name not in commands()}
    assert unknown == {}, f"commands that do not exist: {unknown}"
    assert commands() == {"convert", "train", "eval", "expert", "sim", "record", "run", "demo"}


def test_convert_options_default_to_convert_config() -> None:
    from flow_policy_node.data.cli import build_config
    from flow_policy_node.data.convert import ConvertConfig

    parser = build_parser()
    assert build_config(parser.parse_args(["convert", "bags", "out"])) == ConvertConfig()
    cfg = build_config(parser.parse_args(["convert", "b", "o", "--fps", "15", "--action-topic", "none"]))
    assert cfg == ConvertConfig(fps=15, action_topic=None)
    text = subparser("convert").format_help()
    defaults = ConvertConfig()
    for value in (defaults.fps, defaults.max_gap, defaults.state_topic, defaults.action_topic):
        assert f"(default: {value})" in " ".join(text.split()), value


def test_eval_options_default_to_eval_config() -> None:
    from flow_policy_node.sim.evaluate import EvalConfig

    parser = build_parser()
    args = parser.parse_args(["eval", "ckpt"])
    assert (args.tasks, args.episodes, args.seed) == (None, None, None)  # nothing of its own
    text = " ".join(subparser("eval").format_help().split())
    defaults = EvalConfig()
    assert f"(default: {' '.join(defaults.tasks)})" in text
    assert f"episodes per task (default: {defaults.episodes})" in text
    assert f"(default: {defaults.seed})" in text


def test_train_options_override_only_what_is_given() -> None:
    from flow_policy_node.train.cli import build_config
    from flow_policy_node.train.loop import TrainConfig

    parser = build_parser()
    assert build_config(parser.parse_args(["train", "data", "--out", "c"])) == TrainConfig()
    cfg = build_config(parser.parse_args(["train", "data", "--out", "c", "--threads", "1", "--steps", "7"]))
    assert (cfg.threads, cfg.steps, cfg.batch_size) == (1, 7, TrainConfig().batch_size)


@pytest.mark.parametrize("command", ["sim", "record"])
def test_node_options_not_given_are_left_to_the_parameter_files(command: str) -> None:
    """Options that set a node parameter have no default of their own: config/*.yaml's stand."""
    args = build_parser().parse_args([command])
    if command == "sim":
        assert args.task is None and args.real_time_factor is None
    else:
        assert args.tasks is None and args.storage is None
