"""Scoring text under a model: total nats, tokens, bits per character.

Training's validation loss and ``charlm evaluate`` both call ``score_tokens``, so the two
agree exactly on the same text and batch size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from charlm.config.schema import TrainConfig
from charlm.data.batching import eval_windows
from charlm.data.tokenizers import Tokenizer, drop_unknown, ends_lines_with_eos
from charlm.errors import InputError
from charlm.generation.generate import start_context
from charlm.generation.stepping import run_prime
from charlm.models.lm import RNNLM, as_read, detach_hidden

_MARKED_UNK = re.compile(r"(?<!\S)<unk>(?!\S)")  # a literal <unk> standing as a word

# Above this share of out-of-vocabulary tokens evaluate warns. PTB and WikiText-2 mark
# 2.6-4.8% of their own words <unk>, which is normal; ten percent is not.
OOV_WARN_RATE = 0.10

# Called after each window with (targets scored so far, targets in all): for a progress display.
Progress = Callable[[int, int], None]

# Training's own defaults, so that scoring with no settings reproduces a default run's
# validation loss (a different batch or bptt changes the figure; see evaluate --help).
EVAL_BATCH_SIZE = TrainConfig.eval_batch_size
BPTT = TrainConfig.bptt


@dataclass
class Score:
    nats: float  # total negative log-likelihood of the scored tokens
    tokens: int  # tokens scored (every token but the first)
    chars: int  # characters those tokens spell

    @property
    def nats_per_token(self) -> float:
        return self.nats / max(self.tokens, 1)

    @property
    def bits_per_char(self) -> float:
        # Normalised by raw characters so char, word and subword models compare directly.
        return self.nats / (max(self.chars, 1) * math.log(2))

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats_per_token, 700.0))


@torch.inference_mode()
def score_tokens(
    model: RNNLM,
    tokens: np.ndarray,
    batch_size: int = EVAL_BATCH_SIZE,
    bptt: int = BPTT,
    device: torch.device | str = "cpu",
    on_progress: Progress | None = None,
) -> tuple[float, int]:
    """Total nats and count of every target token, hidden state carried along stripes."""
    was_training = model.training
    model.eval()
    hidden, total, count = None, 0.0, 0
    for x, y, mask in eval_windows(tokens, batch_size, bptt):
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        out = model(x, hidden, targets=y)
        nll, hidden = out.nll, detach_hidden(out.hidden)
        total += float((nll * mask.reshape(-1)).sum())
        count += int(mask.sum())
        if on_progress is not None:
            on_progress(count, len(tokens) - 1)
    model.train(was_training)
    return total, count


@dataclass
class TextScore(Score):
    """A text's score, with what had to be left out because the model cannot represent it."""

    name: str = ""
    text_chars: int = 0  # characters in the text as given
    text_tokens: int = 0  # tokens it encodes to (the first is context, not scored)
    oov_chars: int = 0  # characters the tokenizer cannot encode (dropped before scoring)
    oov_tokens: int = 0  # words the vocabulary lacks, read as the unknown token
    marked_unk: int = 0  # a pre-tokenised text's own <unk> marks: unknown, but not our gap
    unit: str = "token"  # what perplexity is per: see perplexity_unit

    @property
    def oov_char_rate(self) -> float:
        return self.oov_chars / max(self.text_chars, 1)

    @property
    def oov_token_rate(self) -> float:
        return self.oov_tokens / max(self.text_tokens, 1)

    def add(self, other: TextScore) -> None:
        for name in ("nats", "tokens", "chars", "text_chars", "text_tokens", "oov_chars"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.oov_tokens += other.oov_tokens
        self.marked_unk += other.marked_unk

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "chars": self.text_chars,
            "tokens": self.text_tokens,
            "scored_tokens": self.tokens,
            "scored_chars": self.chars,
            "nats": self.nats,
            "nats_per_token": self.nats_per_token,
            "bits_per_char": self.bits_per_char,
            "perplexity": self.perplexity,
            "perplexity_per": self.unit,
            "oov_chars": self.oov_chars,
            "oov_char_rate": self.oov_char_rate,
            "oov_tokens": self.oov_tokens,
            "marked_unk_tokens": self.marked_unk,
            "oov_token_rate": self.oov_token_rate,
        }


def score_text(
    model: RNNLM,
    tokenizer: Tokenizer,
    text: str,
    name: str = "",
    batch_size: int = EVAL_BATCH_SIZE,
    bptt: int = BPTT,
    device: torch.device | str = "cpu",
    on_progress: Progress | None = None,
) -> TextScore:
    """Score ``text`` as training scores its validation split: every token after the first.

    Characters the tokenizer cannot encode are dropped and counted, as training does with a
    given vocabulary. Bits per character are normalised by the characters the scored tokens
    spell, so the figure equals training's ``val_bpc`` on the same text.
    """
    score, ids = text_to_score(tokenizer, text, name)
    ids = as_read(model, ids)  # a backward model reads the text right to left
    score.nats, score.tokens = score_tokens(model, ids, batch_size, bptt, device, on_progress)
    return score


def text_to_score(tokenizer: Tokenizer, text: str, name: str = "") -> tuple[TextScore, np.ndarray]:
    """The ids every scorer (the RNN, the n-gram baseline) scores, and a TextScore awaiting
    its nats: characters, tokens, out-of-vocabulary counts and the characters scored."""
    given = len(text)
    if ends_lines_with_eos(tokenizer) and not text.endswith("\n"):
        text += "\n"  # word_language_model gives every line, the last too, its <eos>
    kept = drop_unknown(text, tokenizer.unknown(text))
    ids = tokenizer.encode(kept)
    score = TextScore(0.0, 0, 0, name, given, len(ids), len(text) - len(kept))
    score.unit = perplexity_unit(tokenizer)
    unk_id = getattr(tokenizer, "unk_id", None)
    if unk_id is not None:
        if ends_lines_with_eos(tokenizer):
            score.marked_unk = len(_MARKED_UNK.findall(kept))
        score.oov_tokens = int(np.count_nonzero(ids == unk_id)) - score.marked_unk
    if len(ids) < 2:
        raise InputError(f"{name or 'the text'} has {len(ids)} token(s): too little to score")
    first, last = tokenizer.spelled_span(kept)
    score.chars = last - first
    return score, ids


def oov_warning(score: TextScore, kind: str) -> str | None:
    """A warning line when much of a text lies outside the model's vocabulary, else None."""
    rate = score.oov_char_rate if kind == "char" else score.oov_token_rate
    if rate <= OOV_WARN_RATE:
        return None
    what = "characters" if kind == "char" else "tokens"
    fate = "dropped before scoring" if kind == "char" else "<unk>, the unknown word"
    return (
        f"{rate:.1%} of the {what} of {score.name} are outside the model's vocabulary "
        f"({fate}): its scores say little about this text; train on text like it, or "
        "use a larger vocabulary"
    )


def perplexity_unit(tokenizer: Tokenizer) -> str:
    """What one step of perplexity is: in whitespace mode the words and <eos> that
    word_language_model and the papers count, so the figures compare with theirs."""
    if ends_lines_with_eos(tokenizer):
        return "word (with <eos>)"
    return "character" if tokenizer.kind == "char" else "token"


def total_score(scores: list[TextScore]) -> TextScore:
    total = TextScore(0.0, 0, 0, "total")
    total.unit = scores[0].unit if scores else "token"
    for s in scores:
        total.add(s)
    return total


def token_report(model: RNNLM, tokenizer: Tokenizer, text: str, top: int = 5) -> dict[str, Any]:
    """Per token of ``text``: its log-probability given the tokens before it, and the model's
    ``top`` candidates at that point; then the candidates for the token after the last.

    A backward model (``--reverse``) reads the text from its end: each token is given the
    ones after it, the rows stay in reading order, and the candidates are for the token
    before the first (under "previous" instead of "next")."""
    ids = tokenizer.encode(text)
    if len(ids) == 0:
        raise InputError("the prime encodes to no tokens: nothing to score")
    backward = model.cfg.reverse
    ids = as_read(model, ids)
    pieces = [tokenizer.decode([int(i)]) for i in ids]
    rows: list[dict[str, Any]] = [
        {"token": p, "id": int(i), "log_prob": None, "top": []}
        for p, i in zip(pieces, ids, strict=True)
    ]
    k = min(top, tokenizer.vocab_size)

    def collect(start: int, log_probs: torch.Tensor) -> None:
        values, indices = log_probs.topk(k, dim=-1)
        for t in range(log_probs.shape[0]):
            cands = [
                _candidate(tokenizer, int(j), float(v))
                for v, j in zip(values[t], indices[t], strict=True)
            ]
            if start + t + 1 < len(rows):
                row = rows[start + t + 1]
                row["log_prob"], row["top"] = float(log_probs[t, row["id"]]), cands
            else:
                next_cands.extend(cands)

    next_cands: list[dict[str, Any]] = []
    run_prime(model, ids, on_chunk=collect)
    # The first token from the cold start `charlm sample` uses (the start context); it is
    # left out of the totals below, which count what evaluate counts: every token after
    # the first, each given the ones before it.
    cold = torch.as_tensor(run_prime(model, start_context(tokenizer))[0])
    rows[0]["log_prob"] = float(cold[rows[0]["id"]])
    best = cold.topk(k)
    rows[0]["top"] = [
        _candidate(tokenizer, int(j), float(v))
        for v, j in zip(best.values, best.indices, strict=True)
    ]
    nats = -sum(r["log_prob"] for r in rows[1:])
    first, last = tokenizer.spelled_span(text)
    score = Score(nats, len(rows) - 1, last - first)
    return {
        "tokens": rows[::-1] if backward else rows,
        "previous" if backward else "next": next_cands,
        "nats": nats,
        "nats_per_token": score.nats_per_token,
        "bits_per_char": score.bits_per_char,
    }


def _candidate(tokenizer: Tokenizer, token: int, log_prob: float) -> dict[str, Any]:
    return {"token": tokenizer.decode([token]), "id": token, "log_prob": log_prob}
