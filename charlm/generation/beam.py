"""Beam search: the most probable continuations of a text, deterministically.

At each step every live hypothesis is extended by every token; the ``beam`` best extensions by
log-probability stay live. A stop string ends a hypothesis: its text is cut before the stop,
and its log-probability is that of its tokens and then of ending there, summed over the tokens
that would end it (a character model's space; any next word of a word model). Finished
hypotheses are ranked by ``log p / tokens ** length_norm``: with the default 0, the plain
log-probability, which ranked held-out words better than per-token normalisation
(docs/commands/complete.md). The search stops early once no live hypothesis can beat the
results already found.

``Scorer`` is what the search asks of a model: the RNN's is ``ModelScorer`` (every hypothesis
one row of a batch, its hidden state carried per row); the n-gram baseline has its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from charlm.data.tokenizers import Tokenizer
from charlm.errors import ConfigError
from charlm.generation.generate import DETOKENIZE_CONTEXT
from charlm.generation.stepping import run_prime
from charlm.models.lm import RNNLM, hidden_from_tensors, hidden_tensors


@dataclass(frozen=True)
class BeamConfig:
    beam: int = 5  # live hypotheses kept at each step
    results: int = 5  # finished hypotheses returned, the best first (at most ``beam``)
    length: int = 20  # tokens at most per hypothesis
    stop: tuple[str, ...] = ()  # a hypothesis ends where one appears, after its first character
    length_norm: float = 0.0  # rank by log p / tokens ** length_norm; 0: by log p
    show_unk: bool = False  # let a word model's hypotheses hold <unk>

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ConfigError(f"--beam must be at least 1 (got {self.beam})")
        if not 1 <= self.results <= self.beam:
            raise ConfigError(
                f"-k must be between 1 and --beam {self.beam} (got {self.results}): "
                "a beam keeps at most that many hypotheses"
            )
        if self.length < 1:
            raise ConfigError(f"--length must be at least 1 for a beam search (got {self.length})")
        if any(not s for s in self.stop):
            raise ConfigError("--stop needs a non-empty string")
        if not 0 <= self.length_norm < math.inf:
            raise ConfigError(f"--length-norm must be 0 or more (got {self.length_norm})")


@dataclass(frozen=True)
class Hypothesis:
    text: str  # the continuation, without the prime and without its stop
    tokens: int  # tokens read to reach it, the one that ended it included
    logprob: float  # natural log-probability of the text (and of its ending there)
    ended: str  # "stop" or "length"
    score: float  # what it was ranked by: logprob / tokens ** length_norm


class Scorer(Protocol):
    def start(self, context: Sequence[int]) -> np.ndarray:
        """Read ``context`` (at least one id); the next-token log-probabilities (V,)."""
        ...

    def advance(self, parents: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Row i continues row ``parents[i]`` of the last call with token ``ids[i]``:
        the next-token log-probabilities (B, V)."""
        ...


class ModelScorer:
    """The RNN as a scorer: one batch row per hypothesis, the hidden state reordered."""

    def __init__(self, model: RNNLM) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.hidden = None

    def start(self, context: Sequence[int]) -> np.ndarray:
        last, self.hidden = run_prime(self.model, context)
        return last.astype(np.float64)

    @torch.inference_mode()
    def advance(self, parents: np.ndarray, ids: np.ndarray) -> np.ndarray:
        rows = torch.as_tensor(parents, dtype=torch.long, device=self.device)
        # Every carried state has its batch in dim 1: (L, B, H), a Jordan network's (1, B, V).
        hidden = hidden_from_tensors([h.index_select(1, rows) for h in hidden_tensors(self.hidden)])
        x = torch.as_tensor(ids, dtype=torch.long, device=self.device)[:, None]
        out = self.model(x, hidden)
        self.hidden = out.hidden
        return out.log_probs[:, -1].double().cpu().numpy()  # (B, V)


@dataclass
class _Live:
    ids: tuple[int, ...]
    text: str
    logprob: float


class TextOf:
    """The text a continuation adds after its context, and what each token adds after another.

    A character model's text is its characters. Other tokenizers join tokens with spaces or
    merge pieces, so a continuation is decoded after a few tokens of the context; a token's
    own piece, used only to find stops, is decoded after the context's last token.
    """

    def __init__(self, tokenizer: Tokenizer, context: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.tail = [int(i) for i in context[-DETOKENIZE_CONTEXT:]]
        self.char = tokenizer.kind == "char"
        self.head = "" if self.char else tokenizer.decode(self.tail)
        self._pieces: list[str] | None = None

    def __call__(self, ids: Sequence[int]) -> str:
        if self.char:
            return self.tokenizer.decode(ids)
        whole = self.tokenizer.decode([*self.tail, *ids])
        return whole[len(self.head) :] if whole.startswith(self.head) else whole

    def pieces(self) -> list[str]:
        if self._pieces is None:
            vocab = range(self.tokenizer.vocab_size)
            if self.char:
                self._pieces = [self.tokenizer.decode([v]) for v in vocab]
            else:
                last = self.tail[-1:]
                before = self.tokenizer.decode(last)
                self._pieces = [self.tokenizer.decode([*last, v])[len(before) :] for v in vocab]
        return self._pieces


@dataclass
class _Endings:
    """Which tokens end a hypothesis with a given tail, grouped by the text kept before the stop."""

    mask: np.ndarray  # (V,) bool: the token brings a stop
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # kept text after head -> ids


class _StopFinder:
    """Stops searched in a hypothesis' last characters and each token's piece, cached by tail."""

    def __init__(self, stops: tuple[str, ...], text_of: TextOf) -> None:
        self.stops = stops
        self.keep = max((len(s) for s in stops), default=1) - 1  # tail characters a stop spans
        self.text_of = text_of
        self.cache: dict[tuple[str, int], _Endings] = {}

    def endings(self, text: str) -> _Endings:
        offset = self.head_length(text)  # where the tail starts in the text
        tail = text[offset:]
        start = max(0, 1 - offset)  # a stop counts after the text's first character only
        key = (tail, start)
        if key not in self.cache:
            self.cache[key] = self._find(tail, start)
        return self.cache[key]

    def head_length(self, text: str) -> int:
        """The characters of ``text`` before the tail a stop may start in."""
        return max(0, len(text) - self.keep)

    def _find(self, tail: str, start: int) -> _Endings:
        pieces = self.text_of.pieces()
        mask = np.zeros(len(pieces), dtype=bool)
        kept: dict[str, list[int]] = {}
        for v, piece in enumerate(pieces):
            s = tail + piece
            hits = [i for i in (s.find(stop, start) for stop in self.stops) if i >= 0]
            if hits:
                mask[v] = True
                kept.setdefault(s[: min(hits)], []).append(v)
        return _Endings(mask, {k: np.array(v) for k, v in kept.items()})


def beam_search(
    scorer: Scorer,
    text_of: TextOf,
    context: Sequence[int],
    cfg: BeamConfig,
    banned: Sequence[int] = (),
) -> list[Hypothesis]:
    """The ``cfg.results`` best continuations of ``context`` (at least one id), best first."""
    scores = scorer.start(context)[None]  # (1, V)
    live = [_Live((), "", 0.0)]
    finder = _StopFinder(cfg.stop, text_of) if cfg.stop else None
    done: dict[str, Hypothesis] = {}
    for t in range(1, cfg.length + 1):
        scores = _ban(scores, banned)
        if finder is not None:
            scores = _finish(live, scores, finder, t, cfg, done)
        live, parents, ids = _extend(live, scores, cfg.beam, text_of, finder is not None)
        if t == cfg.length or not live or _settled(done, live, cfg):
            break
        scores = scorer.advance(parents, ids)
    for h in live if t == cfg.length else []:  # reached the length without a stop
        text = h.text if finder is not None else text_of(h.ids)
        _add(done, Hypothesis(text, len(h.ids), h.logprob, "length", 0.0), cfg)
    return sorted(done.values(), key=lambda h: -h.score)[: cfg.results]


def _ban(scores: np.ndarray, banned: Sequence[int]) -> np.ndarray:
    if not banned:
        return scores
    scores = scores.copy()
    scores[:, list(banned)] = -np.inf
    return scores


def _finish(
    live: list[_Live],
    scores: np.ndarray,
    finder: _StopFinder,
    t: int,
    cfg: BeamConfig,
    done: dict[str, Hypothesis],
) -> np.ndarray:
    """Record the hypotheses the next token ends; their tokens are no longer extensions."""
    scores = scores.copy()
    for row, h in enumerate(live):
        ends = finder.endings(h.text)
        head = h.text[: finder.head_length(h.text)]
        for kept, ids in ends.groups.items():
            mass = float(np.logaddexp.reduce(scores[row, ids]))
            if mass > -np.inf:
                _add(done, Hypothesis(head + kept, t, h.logprob + mass, "stop", 0.0), cfg)
        scores[row, ends.mask] = -np.inf
    return scores


def _add(done: dict[str, Hypothesis], h: Hypothesis, cfg: BeamConfig) -> None:
    """Ways to one text add up: the same word ended by different tokens is one completion."""
    logprob, tokens, ended = h.logprob, h.tokens, h.ended
    if h.text in done:
        old = done[h.text]
        logprob = float(np.logaddexp(logprob, old.logprob))
        tokens, ended = min(tokens, old.tokens), old.ended
    done[h.text] = Hypothesis(h.text, tokens, logprob, ended, _rank(logprob, tokens, cfg))


def _rank(logprob: float, tokens: int, cfg: BeamConfig) -> float:
    return logprob / max(tokens, 1) ** cfg.length_norm


def _extend(
    live: list[_Live], scores: np.ndarray, beam: int, text_of: TextOf, texts: bool
) -> tuple[list[_Live], np.ndarray, np.ndarray]:
    """The ``beam`` most probable extensions: the new hypotheses, their rows' parents, tokens."""
    total = np.array([h.logprob for h in live])[:, None] + scores  # (B, V)
    flat = total.ravel()
    n = min(beam, int(np.count_nonzero(flat > -np.inf)))
    # Ties broken by position: the same input gives the same beam, always.
    best = np.argsort(-flat, kind="stable")[:n]
    parents, ids = np.divmod(best, scores.shape[1])
    new = []
    for p, v, lp in zip(parents.tolist(), ids.tolist(), flat[best].tolist(), strict=True):
        seq = (*live[p].ids, v)
        new.append(_Live(seq, text_of(seq) if texts else "", lp))
    return new, parents, ids


def _settled(done: dict[str, Hypothesis], live: list[_Live], cfg: BeamConfig) -> bool:
    """No live hypothesis can still beat the ``results``-th finished one.

    A log-probability only falls as a hypothesis grows, and ranked by log p / n ** a it can
    at best reach its log p over the longest length: a bound, so stopping loses nothing.
    """
    if len(done) < cfg.results:
        return False
    kth = sorted((h.score for h in done.values()), reverse=True)[cfg.results - 1]
    bound = max(h.logprob for h in live) / cfg.length**cfg.length_norm
    return kth >= bound


def complete(
    model: RNNLM,
    tokenizer: Tokenizer,
    context: Sequence[int],
    cfg: BeamConfig,
) -> list[Hypothesis]:
    """The best continuations of ``context`` under the model; a word model's <unk> is never
    part of one unless ``cfg.show_unk``."""
    unk = getattr(tokenizer, "unk_id", None)
    banned = [] if cfg.show_unk or unk is None or tokenizer.vocab_size < 2 else [unk]
    return beam_search(ModelScorer(model), TextOf(tokenizer, context), context, cfg, banned)
