"""Continuous batching: every open stream of one model advances in one batched step.

One thread owns the model. Between two steps it admits the requests that arrived (each
prompt runs through the model, so its first token is drawn at once) and lets go of those
that finished or whose client left; then it draws one token for every open stream and steps
them all together. A step of 32 rows costs little more than a step of one, so 32 clients
cost little more than one. The loop is `sample --num-samples`'s (``generate_ids``): the
same prime, draws and detokenizing, so a request served here with a seed gives the text
`charlm sample` gives with that seed, whoever else is being served.

::

    step t:   [ job A: 1 row | job B: 3 rows (n=3) | job C: 1 row ]  -> scores (5, V)
    between:  B finished, D arrived   -> rows: [ A | C | D ]
    step t+1: [ job A | job C | job D ]                              -> scores (3, V)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import astuple, dataclass, field
from typing import Any

import numpy as np
import torch

from charlm.data.tokenizers import Tokenizer
from charlm.errors import RequestError
from charlm.generation.generate import Detokenizer, StopScanner
from charlm.generation.sampling import SamplingConfig, choose
from charlm.generation.stepping import blas_threads, run_prime
from charlm.models.lm import RNNLM, Hidden, hidden_from_tensors, hidden_tensors
from charlm.serving.outbox import ABORT, Outbox, TokenLogprob, wake
from charlm.serving.rows import RowBatch

log = logging.getLogger("charlm.serve")

# From this many rows a step is a real matrix product and more BLAS threads help; below it
# one thread is fastest (generate_ids makes the same choice).
BATCH_THREADS_FROM = 16
# Prompts up to this many tokens that arrive together with others of their length are run
# through the model as one batch (their (B, T, V) log-probabilities held at once).
BATCHED_PRIME_MAX = 1024
RETRY_AFTER = 1  # seconds a client told "busy" (429) waits: streams end many times a second


@dataclass
class Job:
    """One request's streams: ``n`` continuations of ``context``, drawn with one generator."""

    context: list[int]  # at least one id: the prompt, or the start context
    n: int
    max_tokens: int
    sampling: SamplingConfig
    seed: int
    outbox: Outbox
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # alternatives listed per token; None: no log-probabilities
    echo_ids: list[int] = field(default_factory=list)  # prompt ids to report log-probs of
    cancelled: bool = False  # the client left: dropped before the next step


class _Streams:
    """An admitted job's per-choice decoding state."""

    def __init__(self, job: Job, tokenizer: Tokenizer) -> None:
        self.job = job
        self.rng = np.random.default_rng(job.seed)
        self.detoks = [Detokenizer(tokenizer, job.context) for _ in range(job.n)]
        self.scanners = [StopScanner(job.stop) for _ in range(job.n)]
        self.drawn = 0
        self.key = astuple(job.sampling)  # streams with equal keys are drawn together

    @property
    def gone(self) -> bool:
        return self.job.cancelled or self.job.outbox.done


class _Draws:
    """``choose``'s random source for the rows of several jobs: each job's rows come from its
    own generator, drawn as one (n, V) block as `sample --num-samples n` draws them."""

    def __init__(self, streams: list[_Streams]) -> None:
        self.streams = streams

    def gumbel(self, size: tuple[int, ...]) -> np.ndarray:
        return np.concatenate([s.rng.gumbel(size=(s.job.n, *size[1:])) for s in self.streams])

    def random(self, size: tuple[int, ...]) -> np.ndarray:
        return np.concatenate([s.rng.random((s.job.n, *size[1:])) for s in self.streams])


class Engine:
    """The scheduler of one model: ``submit`` from any thread; its own thread steps."""

    def __init__(self, model: RNNLM, tokenizer: Tokenizer, max_streams: int) -> None:
        self.model, self.tokenizer, self.max_streams = model, tokenizer, max_streams
        self.rows = RowBatch(model)
        self.vocab = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]
        self.active: list[_Streams] = []
        self.scores = np.empty((0, tokenizer.vocab_size), np.float32)  # (rows, V) to draw from
        self._cond = threading.Condition()
        self._arrived: list[Job] = []
        self._calls: list[tuple[Callable[[], Any], Future]] = []  # work run between steps
        self._reserved = 0  # rows of jobs submitted and not yet let go
        self._closing = False
        self._blas = ExitStack()
        self._blas_threads = 0
        self._thread = threading.Thread(target=self._run, name="charlm-engine", daemon=True)

    @property
    def open_streams(self) -> int:
        return self._reserved

    def start(self) -> None:
        self._thread.start()

    def submit(self, jobs: list[Job]) -> None:
        """Queue ``jobs`` for the next step, all or none: RequestError 429 when their streams
        do not fit beside the open ones, 503 once the server is shutting down."""
        rows = sum(job.n for job in jobs)
        with self._cond:
            if self._closing:
                raise RequestError("the server is shutting down: send the request again", 503)
            if self._reserved + rows > self.max_streams:
                raise RequestError(
                    f"all {self.max_streams} streams are busy (--max-streams): retry in "
                    f"{RETRY_AFTER} s",
                    429,
                    retry_after=RETRY_AFTER,
                )
            self._reserved += rows
            self._arrived.extend(jobs)
            self._cond.notify()

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the engine thread between two steps (the model is used from one
        thread only); its result or exception arrives in the returned future."""
        future: Future = Future()
        with self._cond:
            if self._closing:
                raise RequestError("the server is shutting down: send the request again", 503)
            self._calls.append((fn, future))
            self._cond.notify()
        return future

    def close(self, timeout: float = 5.0) -> None:
        """End every open stream with a final piece (finish_reason "abort") and stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ---- the engine thread ----------------------------------------------------------
    def _run(self) -> None:
        with self._blas:
            while True:
                with self._cond:
                    while not (self._arrived or self._calls or self.active or self._closing):
                        self._cond.wait()
                    arrived, self._arrived = self._arrived, []
                    calls, self._calls = self._calls, []
                    closing = self._closing
                if closing:
                    self._end(arrived, ABORT)
                    for _, future in calls:
                        future.cancel()
                    return
                for fn, future in calls:
                    _call(fn, future)
                try:
                    self._round(arrived)
                except Exception:  # a bug: these requests fail, the server goes on
                    log.exception("charlm serve: generation failed")
                    self._end(arrived, None)

    def _end(self, arrived: list[Job], reason: str | None) -> None:
        """Finish every job, open or just arrived: with ``reason``, or as failed (None)."""
        jobs = [s.job for s in self.active] + arrived
        boxes = []
        for job in jobs:
            if reason is None:
                boxes += [job.outbox] if job.outbox.fail("generation failed") else []
            for k in range(job.n if reason is not None else 0):
                boxes += [job.outbox] if job.outbox.finish(k, reason) else []
        wake(boxes)
        self.active, self.scores = [], self.scores[:0]
        self.rows.keep(np.arange(0))
        self._release(sum(job.n for job in jobs))

    def _round(self, arrived: list[Job]) -> None:
        woken: dict[int, Outbox] = {}
        for group in _same_length(arrived):
            primed = self._prime_together(group) if len(group) > 1 else [None]
            for job, prime in zip(group, primed, strict=True):
                self._admit(job, prime, woken)
        if self.active:
            ids = self._draw()
            self._emit(ids, woken)
            ids = self._let_go(ids)
            if len(ids):
                self.scores = self.rows.step(ids)
        wake(woken.values())

    @torch.inference_mode()
    def _prime_together(self, jobs: list[Job]) -> list[tuple[np.ndarray, Hidden]]:
        """Prompts of one length that arrived together, run through the model as one batch:
        32 clients starting at once wait for one pass, not 32 in a row."""
        ids = torch.as_tensor([job.context for job in jobs], dtype=torch.long)
        out = self.model(ids)  # (B, T) -> log_probs (B, T, V)
        states = hidden_tensors(out.hidden)  # (L, B, H) each
        return [
            (out.log_probs[b, -1].numpy(), hidden_from_tensors([h[:, b : b + 1] for h in states]))
            for b in range(len(jobs))
        ]

    @torch.inference_mode()
    def _admit(
        self, job: Job, prime: tuple[np.ndarray, Hidden] | None, woken: dict[int, Outbox]
    ) -> None:
        if prime is None:
            chunks: list[torch.Tensor] = []
            collect = (lambda _, lp: chunks.append(lp)) if job.echo_ids else None
            prime = run_prime(self.model, job.context, on_chunk=collect)
            if job.echo_ids:
                self._echo_logprobs(job, torch.cat(chunks).numpy(), woken)
        last, hidden = prime
        if job.max_tokens == 0:
            for k in range(job.n):
                self._finish(job, k, "length", woken)
            self._release(job.n)
            return
        self.rows.add(hidden, job.n)
        self.scores = np.concatenate([self.scores, np.repeat(last[None], job.n, axis=0)])
        self.active.append(_Streams(job, self.tokenizer))
        self._limit_blas()

    def _echo_logprobs(self, job: Job, log_probs: np.ndarray, woken: dict[int, Outbox]) -> None:
        """The prompt's tokens with their log-probabilities (the first has none: nothing came
        before it), ahead of every choice's continuation."""
        ids = job.echo_ids
        entries = [TokenLogprob(self.vocab[ids[0]], None, None)]
        lp = _log_softmax(log_probs)
        entries += [self._logprob(lp[t - 1], ids[t], job.logprobs) for t in range(1, len(ids))]
        for k in range(job.n):
            for entry in entries:
                self._put(job, k, "", entry, woken)

    def _draw(self) -> np.ndarray:
        """One token per row; rows that share their sampling settings are drawn together."""
        ids = np.empty(len(self.scores), np.int64)
        groups: dict[tuple, list[tuple[int, _Streams]]] = {}
        start = 0
        for s in self.active:
            groups.setdefault(s.key, []).append((start, s))
            start += s.job.n
        for members in groups.values():
            rows = np.concatenate([np.arange(at, at + s.job.n) for at, s in members])
            streams = [s for _, s in members]
            ids[rows] = choose(self.scores[rows], streams[0].job.sampling, _Draws(streams))
        return ids

    def _emit(self, ids: np.ndarray, woken: dict[int, Outbox]) -> None:
        start = 0
        for s in self.active:
            job, rows = s.job, slice(start, start + s.job.n)
            start += job.n
            if s.gone:
                continue
            lp = _log_softmax(self.scores[rows]) if job.logprobs is not None else None
            s.drawn += 1
            for k, token in enumerate(ids[rows].tolist()):
                if job.outbox.finished(k):
                    continue
                entry = None if lp is None else self._logprob(lp[k], token, job.logprobs)
                self._put(job, k, s.scanners[k].feed(s.detoks[k].push(token)), entry, woken, 1)
                if s.scanners[k].done:
                    self._finish(job, k, "stop", woken)
                elif s.drawn == job.max_tokens:
                    self._put(job, k, s.scanners[k].flush(), None, woken)
                    self._finish(job, k, "length", woken)

    def _let_go(self, ids: np.ndarray) -> np.ndarray:
        """Drop the rows of finished and abandoned jobs; the ids of the rows that stay."""
        keep, kept, start = [], [], 0
        for s in self.active:
            if s.gone:
                self._release(s.job.n)
            else:
                keep.extend(range(start, start + s.job.n))
                kept.append(s)
            start += s.job.n
        if len(kept) < len(self.active):
            rows = np.asarray(keep, np.int64)
            self.active = kept
            self.rows.keep(rows)
            self.scores, ids = self.scores[rows], ids[rows]
            self._limit_blas()
        return ids

    def _logprob(self, lp: np.ndarray, token: int, top: int | None) -> TokenLogprob:
        best = np.argsort(-lp, kind="stable")[: top or 0]
        alternatives = [(self.vocab[j], float(lp[j])) for j in best.tolist()]
        return TokenLogprob(self.vocab[token], float(lp[token]), alternatives)

    def _put(
        self,
        job: Job,
        k: int,
        text: str,
        entry: TokenLogprob | None,
        woken: dict[int, Outbox],
        drawn: int = 0,
    ) -> None:
        if job.outbox.put(k, text, entry, drawn):
            woken[id(job.outbox)] = job.outbox

    def _finish(self, job: Job, k: int, reason: str, woken: dict[int, Outbox]) -> None:
        if job.outbox.finish(k, reason):
            woken[id(job.outbox)] = job.outbox

    def _release(self, n: int) -> None:
        with self._cond:
            self._reserved -= n

    def _limit_blas(self) -> None:
        want = 1 if self.rows.size < BATCH_THREADS_FROM else torch.get_num_threads()
        if want != self._blas_threads:
            self._blas.close()
            self._blas.enter_context(blas_threads(want))
            self._blas_threads = want


def _same_length(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by prompt length, each group small enough for one pass; a job that wants
    its prompt's log-probabilities (echo) goes alone, through ``run_prime``'s chunks."""
    groups: dict[int, list[Job]] = {}
    alone = []
    for job in jobs:
        if job.echo_ids or len(job.context) > BATCHED_PRIME_MAX:
            alone.append([job])
        else:
            groups.setdefault(len(job.context), []).append(job)
    return alone + list(groups.values())


def _call(fn: Callable[[], Any], future: Future) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn())
    except Exception as e:  # handed to the caller, who answers the client
        future.set_exception(e)


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    z = scores.astype(np.float64)
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
