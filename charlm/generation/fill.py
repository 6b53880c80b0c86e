"""Filling the gaps of a text from both directions: a forward and a backward character model.

Each model reads the text from its own side up to each gap and gives the gap's distribution;
a gap it passes on its way is read as its own likeliest guess there. The two distributions
are combined as a product of experts, p(c) proportional to p_fwd(c) p_bwd(c): each side
alone is a proper model of the gap given its side, and what both find likely wins. (The
exact posterior would weigh in how the chosen character changes everything the backward
model reads after it; the product is the usual one-pass approximation.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.data.tokenizers import CharTokenizer, Tokenizer
from charlm.errors import ConfigError, InputError, describe_unknown
from charlm.generation.stepping import blas_threads, make_stepper
from charlm.models.lm import RNNLM

MARKER = "_"  # what marks a gap unless the user picks another character
RULES = ("both", "forward", "backward")


@dataclass
class Filled:
    """A text with its gaps filled, and what was chosen at each."""

    text: str
    gaps: list[int]  # the positions filled
    chosen: list[str]  # the character put at each
    confidence: list[float]  # its probability under the rule used


def gap_positions(text: str, marker: str) -> list[int]:
    if len(marker) != 1:
        raise InputError(f"--marker must be one character (got {marker!r})")
    gaps = [i for i, c in enumerate(text) if c == marker]
    if not gaps:
        raise InputError(f"the text has no gap marked '{marker}': mark each gap with --marker")
    return gaps


def check_pair(forward: RNNLM, backward: RNNLM, fwd_tok: Tokenizer, bwd_tok: Tokenizer) -> None:
    """Two character models over one vocabulary, reading in opposite directions."""
    if not isinstance(fwd_tok, CharTokenizer) or not isinstance(bwd_tok, CharTokenizer):
        raise ConfigError("charlm fill fills characters: give two runs with --tokenizer char")
    if fwd_tok.chars != bwd_tok.chars:
        raise ConfigError("the two runs have different vocabularies: train both on the same corpus")
    if forward.cfg.reverse or not backward.cfg.reverse:
        raise ConfigError(
            "give the forward run first and the backward one second (trained with --reverse)"
        )


def gap_log_probs(model: RNNLM, ids: np.ndarray, gaps: list[int]) -> np.ndarray:
    """The model's log-distribution (G, V) at each gap, reading ``ids`` in the model's own
    direction; a gap passed is read as the model's likeliest guess, a gap before any token
    gets the uniform distribution."""
    V, n = model.embed.num_embeddings, len(ids)
    order = range(n - 1, -1, -1) if model.cfg.reverse else range(n)
    where = {g: k for k, g in enumerate(gaps)}
    out = np.full((len(gaps), V), -np.log(V))
    stepper = make_stepper(model)
    stepper.start(model.init_hidden(1, next(model.parameters()).device), 1)
    log_p = None
    with blas_threads(1):
        for i in order:
            token = ids[i]
            if i in where:
                if log_p is not None:
                    out[where[i]] = log_p
                token = int(np.argmax(out[where[i]]))
            logits = stepper.step(np.array([token])).astype(np.float64)[0]
            log_p = logits - np.logaddexp.reduce(logits)
    return out


def fill(
    forward: RNNLM, backward: RNNLM, tokenizer: CharTokenizer, text: str, marker: str = MARKER,
    rule: str = "both",
) -> Filled:  # fmt: skip
    """``text`` with each ``marker`` replaced by the character the ``rule`` finds likeliest."""
    if rule not in RULES:
        raise ConfigError(f"unknown --rule '{rule}': choose one of {', '.join(RULES)}")
    gaps = gap_positions(text, marker)
    unknown = [(i, c) for i, c in tokenizer.unknown(text) if c != marker]
    if unknown:
        raise InputError(describe_unknown(unknown) + ": the models cannot read it")
    ids = np.zeros(len(text), np.int64)
    known = [i for i in range(len(text)) if i not in set(gaps)]
    ids[known] = tokenizer.encode("".join(text[i] for i in known))
    log_p = np.zeros((len(gaps), tokenizer.vocab_size))
    for model, used in ((forward, rule != "backward"), (backward, rule != "forward")):
        if used:
            log_p += gap_log_probs(model, ids, gaps)
    log_p -= np.logaddexp.reduce(log_p, axis=1, keepdims=True)  # the product, renormalised
    best = log_p.argmax(axis=1)
    chosen = [tokenizer.chars[b] for b in best]
    chars = list(text)
    for g, c in zip(gaps, chosen, strict=True):
        chars[g] = c
    confidence = np.exp(log_p[np.arange(len(gaps)), best]).tolist()
    return Filled("".join(chars), gaps, chosen, confidence)
