"""Generating: run a prime through the network, then sample token after token.

``generate_ids`` is the one generation loop, at the level of token ids; ``generate`` turns
its ids into the new text of every stream after each step (so a caller can stream it as it
is produced), and ``sample_text`` into training's samples.txt. K streams (``num_samples``)
advance together as one batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from charlm.config.schema import check_seed
from charlm.data.tokenizers import Tokenizer
from charlm.errors import ConfigError
from charlm.generation.sampling import SamplingConfig, choose
from charlm.generation.stepping import blas_threads, make_stepper, run_prime
from charlm.models.lm import RNNLM

DETOKENIZE_CONTEXT = 8  # tokens of left context when decoding one token of a word model


@dataclass
class GenerateConfig:
    length: int = 500  # new tokens per sample (characters for a character model)
    num_samples: int = 1  # generated together as one batch
    stop: tuple[str, ...] = ()  # a sample ends where one of these appears (not included)
    seed: int | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    fast: bool = True  # the NumPy step when the model allows it
    show_unk: bool = False  # let a word model draw <unk> (else it is masked out)

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ConfigError(f"--length must be 0 or more (got {self.length})")
        if self.num_samples < 1:
            raise ConfigError(f"--num-samples must be at least 1 (got {self.num_samples})")
        check_seed(self.seed)
        if any(not s for s in self.stop):
            raise ConfigError("--stop needs a non-empty string")


class StopScanner:
    """Cuts one stream's text at the first stop string, holding back a possible partial match.

    Text is released as soon as it cannot be the start of a stop string, so streaming stays
    immediate and a stop string is never half-printed.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.buf = ""
        self.done = False

    def feed(self, text: str) -> str:
        """The text that is safe to emit now ('' once stopped)."""
        if self.done:
            return ""
        if not self.stops:
            return text
        self.buf += text
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf, self.done = self.buf[: min(hits)], "", True
            return out
        held = self._held()
        out, self.buf = self.buf[: len(self.buf) - held], self.buf[len(self.buf) - held :]
        return out

    def _held(self) -> int:
        """Length of the longest tail of the buffer that begins some stop string."""
        for n in range(min(len(self.buf), self.longest - 1), 0, -1):
            if any(s.startswith(self.buf[-n:]) for s in self.stops):
                return n
        return 0

    def flush(self) -> str:
        out, self.buf = ("" if self.done else self.buf), ""
        return out


class Detokenizer:
    """The text one new token adds to a stream.

    A character model maps each id to its character. Other tokenizers may join tokens with
    spaces or merge pieces, so the text is the difference between decoding a short left
    context with and without the new token.
    """

    def __init__(self, tokenizer: Tokenizer, context: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.table = (
            [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]
            if tokenizer.kind == "char"
            else None
        )
        self.tail = [int(i) for i in context[-DETOKENIZE_CONTEXT:]]

    def push(self, token: int) -> str:
        if self.table is not None:
            return self.table[token]
        before = self.tokenizer.decode(self.tail)
        self.tail.append(token)
        after = self.tokenizer.decode(self.tail)
        if len(self.tail) > DETOKENIZE_CONTEXT:
            del self.tail[0]
        return after[len(before) :] if after.startswith(before) else self.tokenizer.decode([token])


def start_context(tokenizer: Tokenizer) -> list[int]:
    """What an unprimed sample starts from: a newline (the start of a line), if the model knows
    one, else token 0. It conditions the first token and is never printed."""
    if not tokenizer.unknown("\n"):
        ids = [int(i) for i in tokenizer.encode("\n")]
        if ids:
            return ids
    return [0]


def generate_ids(model: RNNLM, context: Sequence[int], cfg: GenerateConfig) -> Iterator[np.ndarray]:
    """The ids (K,) each of ``cfg.length`` steps draws, every stream continuing ``context``
    (at least one id); each step's ids are fed back into the model. A caller may stop early.
    """
    last, hidden = run_prime(model, context)
    K = cfg.num_samples
    stepper = make_stepper(model, cfg.fast)
    stepper.start(hidden, K)
    scores = np.repeat(last[None], K, axis=0)
    rng = np.random.default_rng(cfg.seed)
    # One row is memory-bound (one BLAS thread is fastest); a batch is a real matrix product.
    with blas_threads(1 if K < 16 else torch.get_num_threads()):
        for t in range(cfg.length):
            ids = choose(scores, cfg.sampling, rng)
            yield ids
            if t + 1 < cfg.length:  # the last step's successor is never needed
                scores = stepper.step(ids)


def unk_masked(sampling: SamplingConfig, tokenizer: Tokenizer) -> SamplingConfig:
    """Sampling that never draws the tokenizer's unknown token, if it has one (word models):
    "<unk>" in a sample reads as a defect, and the model's other words are there to use."""
    unk = getattr(tokenizer, "unk_id", None)
    if unk is None or unk >= tokenizer.vocab_size or tokenizer.vocab_size < 2:
        return sampling
    return replace(sampling, banned=(*sampling.banned, unk))


def generate(
    model: RNNLM, tokenizer: Tokenizer, prime_ids: Sequence[int], cfg: GenerateConfig
) -> Iterator[list[str]]:
    """Per step, the new text of each of the K streams ('' for a stream that has stopped).

    After the last step one more list flushes any text held back by the stop scanners. A
    backward model (``--reverse``) writes what comes before the prime: see ``leftwards``.
    """
    if not cfg.show_unk:
        cfg = replace(cfg, sampling=unk_masked(cfg.sampling, tokenizer))
    if model.cfg.reverse:
        yield from leftwards(model, tokenizer, prime_ids, cfg)
        return
    context = [int(i) for i in prime_ids] or start_context(tokenizer)
    detoks = [Detokenizer(tokenizer, context) for _ in range(cfg.num_samples)]
    scanners = [StopScanner(cfg.stop) for _ in range(cfg.num_samples)]
    with closing(generate_ids(model, context, cfg)) as steps:
        for ids in steps:
            yield [s.feed(d.push(int(i))) for s, d, i in zip(scanners, detoks, ids, strict=True)]
            if all(s.done for s in scanners):
                return
    yield [s.flush() for s in scanners]


def leftwards(
    model: RNNLM, tokenizer: Tokenizer, prime_ids: Sequence[int], cfg: GenerateConfig
) -> Iterator[list[str]]:
    """``generate`` for a backward model: the text before ``prime_ids``, in reading order.

    The model reads the prime from its end and draws tokens right to left, so no piece can
    be written before the last is drawn: every step yields '' (a caller's progress still
    advances) and the final list holds each stream's whole text. A stream stops at its
    first stop string from the prime leftwards, the rightmost one in reading order.
    """
    context = [int(i) for i in prime_ids][::-1] or start_context(tokenizer)
    drawn: list[list[int]] = [[] for _ in range(cfg.num_samples)]
    done = [False] * cfg.num_samples
    # Tokens whose text can hold a stop string that the newest token begins.
    span = DETOKENIZE_CONTEXT + max((len(s) for s in cfg.stop), default=0)
    with closing(generate_ids(model, context, cfg)) as steps:
        for ids in steps:
            for k, i in enumerate(ids):
                if not done[k]:
                    drawn[k].append(int(i))
                    head = tokenizer.decode(drawn[k][: -span - 1 : -1])
                    done[k] = any(s in head for s in cfg.stop)
            yield [""] * cfg.num_samples
            if all(done):
                break
    right = [int(i) for i in prime_ids][:DETOKENIZE_CONTEXT]
    yield [after_last_stop(text_before(tokenizer, d[::-1], right), cfg.stop) for d in drawn]


def text_before(tokenizer: Tokenizer, ids: Sequence[int], right: Sequence[int]) -> str:
    """The text ``ids`` spell when ``right`` (the prime's first tokens) follows them: the
    mirror of ``Detokenizer``, so a word model's space before the prime is kept."""
    if tokenizer.kind == "char" or not right:
        return tokenizer.decode(ids)
    whole, tail = tokenizer.decode([*ids, *right]), tokenizer.decode(right)
    return whole[: len(whole) - len(tail)] if whole.endswith(tail) else tokenizer.decode(ids)


def after_last_stop(text: str, stops: Sequence[str]) -> str:
    """What follows the last stop string in ``text`` (all of it when none occurs)."""
    ends = [i + len(s) for s in stops if (i := text.rfind(s)) >= 0]
    return text[max(ends) :] if ends else text


def sample_text(
    model: RNNLM, tokenizer: Tokenizer, length: int, temperature: float, seed: int
) -> str:
    """Training's samples.txt: what `charlm sample --seed SEED --temperature T --length N`
    prints for the same weights (the same start context and loop). Training mode comes back."""
    was_training = model.training
    cfg = GenerateConfig(length, seed=seed, sampling=SamplingConfig(temperature=temperature))
    try:
        return generate_text(model, tokenizer, [], cfg)[0]
    finally:
        model.train(was_training)


def generate_text(
    model: RNNLM, tokenizer: Tokenizer, prime_ids: Sequence[int], cfg: GenerateConfig
) -> list[str]:
    """The K finished samples (without the prime)."""
    parts: list[list[str]] = [[] for _ in range(cfg.num_samples)]
    for pieces in generate(model, tokenizer, prime_ids, cfg):
        for k, piece in enumerate(pieces):
            parts[k].append(piece)
    return ["".join(p) for p in parts]
