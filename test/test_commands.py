"""Issue 5: free-text commands resolved to a checkpoint's tasks with real MiniLM embeddings."""

from __future__ import annotations

import pytest

from flow_policy_node.control.commands import CommandResolver, colours_in, minilm_embedder
from flow_policy_node.sim.tasks import TASKS

VOCAB = [t.command for t in TASKS.values()]


@pytest.fixture(scope="module")
def resolver() -> CommandResolver:
    return CommandResolver(VOCAB, minilm_embedder(), threshold=0.6, margin=0.08)


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Pick up the red cube.", "pick up the red cube"),
        ("pick_green", "pick up the green cube"),
        ("grab the red cube", "pick up the red cube"),
        ("please lift the crimson block", "pick up the red cube"),  # colour synonym, object synonym
        ("could you pick the green cube up", "pick up the green cube"),
        ("take the navy box", "pick up the blue cube"),
        ("go to the point", "reach the point"),
        ("move your hand to the target", "reach the point"),
        ("steer around the obstacle to the goal", "reach the goal around the obstacle"),
        ("avoid the pole and get to the target", "reach the goal around the obstacle"),
    ],
)
def test_paraphrases_resolve_to_their_task(resolver: CommandResolver, text: str, task: str) -> None:
    res = resolver.resolve(text)
    assert res.task == task, res.message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("make me a sandwich", "unknown command"),
        ("what time is it", "unknown command"),
        ("dance", "unknown command"),
        ("open the door", "unknown command"),
        ("push the red cube", "no task does"),  # same object, an action no task does
        ("throw the cube", "no task does"),
        ("pick up the yellow cube", "yellow"),  # a colour no task has
        ("grab the cube", "name one of"),  # which colour?
        ("", "empty"),
    ],
)
def test_unrelated_or_ambiguous_commands_are_refused_with_a_reason(
    resolver: CommandResolver, text: str, reason: str
) -> None:
    res = resolver.resolve(text)
    assert res.task is None and res.how == "refused", res
    assert reason in res.message, res.message


def test_without_an_embedder_only_exact_commands_pass() -> None:
    r = CommandResolver(VOCAB, embedder=None)
    assert r.resolve("REACH the point!").task == "reach the point"
    res = r.resolve("go to the point")
    assert res.task is None and "no embedding model" in res.message and "reach the point" in res.message


def test_task_names_resolve_only_when_the_checkpoint_has_the_task() -> None:
    r = CommandResolver(["reach the point"], embedder=None)
    assert r.resolve("reach").task == "reach the point"
    assert r.resolve("pick_red").task is None


def test_colour_words_map_to_canonical_colours() -> None:
    assert colours_in("the Scarlet and the emerald block") == ["red", "green"]
