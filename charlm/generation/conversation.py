"""A conversation with a model: one stream whose state is carried from turn to turn.

What the user types and what the model writes are both read into the one hidden state, so
each turn continues the whole conversation without reading it again. Every token is read
before its text is given out: a caller that stops a continuation midway (Ctrl-C) leaves the
state holding exactly what was shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from charlm.data.tokenizers import Tokenizer
from charlm.generation.generate import (
    DETOKENIZE_CONTEXT,
    Detokenizer,
    StopScanner,
    start_context,
    unk_masked,
)
from charlm.generation.sampling import SamplingConfig, choose
from charlm.models.lm import RNNLM, Hidden

CHUNK = 4096  # tokens read per forward pass: a long paste never holds a (T, V) array


class Conversation:
    def __init__(self, model: RNNLM, tokenizer: Tokenizer) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.reset()

    def reset(self) -> None:
        """Forget everything read: the zero state, an empty transcript."""
        self.hidden: Hidden | None = None
        self.scores: np.ndarray | None = None  # (V,) log-probabilities of the next token
        self.tokens = 0  # tokens read since the start or the last reset
        self.recent: list[int] = []  # the last few, for decoding the next
        self.pieces: list[str] = []  # the transcript: everything read, in order

    @property
    def transcript(self) -> str:
        return "".join(self.pieces)

    def read(self, text: str) -> None:
        """Read ``text`` into the state (it must be in the model's vocabulary)."""
        ids = [int(i) for i in self.tokenizer.encode(text)]
        if ids:
            self._read_ids(ids)
            self.pieces.append(text)

    @torch.inference_mode()
    def _read_ids(self, ids: Sequence[int]) -> None:
        x = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device)
        for start in range(0, len(ids), CHUNK):
            out = self.model(x[None, start : start + CHUNK], self.hidden)
            self.hidden = out.hidden
            self.scores = out.log_probs[0, -1].double().cpu().numpy()
        self.tokens += len(ids)
        self.recent = [*self.recent, *ids][-DETOKENIZE_CONTEXT:]

    def write(
        self,
        length: int,
        sampling: SamplingConfig,
        rng: np.random.Generator,
        stop: Sequence[str] = (),
        show_unk: bool = False,
    ) -> Iterator[str]:
        """The model's continuation, piece by piece, each token read as it is drawn: at most
        ``length`` tokens, ending at a stop string (read, but not given out)."""
        if self.scores is None:  # nothing read yet: begin as an unprimed sample begins
            self._read_ids(start_context(self.tokenizer))
        if not show_unk:
            sampling = unk_masked(sampling, self.tokenizer)
        detok = Detokenizer(self.tokenizer, self.recent)
        scanner = StopScanner(stop)
        for _ in range(length):
            token = int(choose(self.scores[None], sampling, rng)[0])
            self._read_ids([token])
            piece = detok.push(token)
            self.pieces.append(piece)
            shown = scanner.feed(piece)
            if shown:
                yield shown
            if scanner.done:
                return
        rest = scanner.flush()
        if rest:
            yield rest
