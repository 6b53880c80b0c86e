"""The recurrent language model: embedding, a stack of recurrent layers, a decoder.

The stack is the cell's (``charlm.models.registry``): torch's fused nn.LSTM, nn.GRU or nn.RNN,
or one of charlm's own loops shaped like them (``charlm.models.cells``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlm.config.schema import ModelConfig
from charlm.models import lstmloop, registry
from charlm.models.registry import CellSpec

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

ADAPTIVE_MIN_VOCAB = 5000  # from this vocabulary size on, the output layer is adaptive


@dataclass
class LMOutput:
    """One pass of the model over tokens (B, T)."""

    hidden: Hidden  # the state after the last step: carry it into the next window
    states: torch.Tensor  # (B, T, H) the top layer's states, before the output dropout
    log_probs: torch.Tensor | None = None  # (B, T, V), float32 or wider; without targets
    nll: torch.Tensor | None = None  # (B*T,) -log p(target) per token; with targets


class RNNLM(nn.Module):
    """Token ids (B, T) -> the next-token distribution (B, T, V), carrying a hidden state.

    Uses PyTorch's fused nn.LSTM / nn.GRU / nn.RNN where the cell is one: on a CPU it measured
    faster than every hand-written or compiled alternative, but one: LSTM layers of 1,024 units
    or more training in bf16 on a CPU run charlm's own loop over nn.LSTM's weights
    (``charlm.models.lstmloop``).
    """

    def __init__(self, cfg: ModelConfig, *, loading: bool = False) -> None:
        """``loading``: the weights are about to come from a checkpoint, so a cell's fixed
        random weights are not drawn (an echo-state reservoir's eigendecomposition takes a
        second)."""
        super().__init__()
        spec = registry.check(cfg)
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        self.drop = nn.Dropout(cfg.dropout)  # the top layer's output (self.rnn drops between)
        embed_p = cfg.dropout if cfg.embed_dropout is None else cfg.embed_dropout
        self.embed_drop = nn.Dropout(embed_p)
        self.rnn = spec.build(cfg)
        self.adaptive = uses_adaptive_softmax(cfg)
        self.decoder: nn.Module
        if self.adaptive:
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(
                cfg.hidden_size, cfg.vocab_size, adaptive_cutoffs(cfg.vocab_size), div_value=4.0
            )
        else:
            self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.decoder.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.1)
        spec.init(self.embed, self.rnn, cfg, loading)

    @property
    def spec(self) -> CellSpec:
        return registry.get(self.cfg.model)

    def forward(
        self, x: torch.Tensor, hidden: Hidden | None = None, targets: torch.Tensor | None = None
    ) -> LMOutput:
        """Tokens ``x`` (B, T) read from ``hidden`` (zeros when None): the next-token
        log-probabilities, or, given ``targets`` (B, T), the per-token negative log-likelihood
        in their place.

        Training and scoring give targets: an adaptive softmax then computes only its head and
        the clusters the targets fall in, never the whole (B, T, V).
        """
        states, logits, hidden = self._recur(x, hidden)
        top = self.drop(states) if logits is None else None  # what the output layer reads
        if targets is not None:
            nll = _cross_entropy(logits, targets) if top is None else self.nll_from(top, targets)
            return LMOutput(hidden, states, nll=nll)
        log_probs = _log_softmax(logits) if top is None else self.log_probs_from(top)
        return LMOutput(hidden, states, log_probs=log_probs)

    def advance(self, x: torch.Tensor, hidden: Hidden | None = None) -> Hidden:
        """The state after reading ``x`` (B, T), nothing decoded that the cell does not need."""
        return self._recur(x, hidden)[2]

    def _recur(
        self, x: torch.Tensor, hidden: Hidden | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, Hidden]:
        """The top layer's states (B, T, H), the logits if the recurrence computed them, the
        new state.

        A cell that steps through the decoder (a Jordan network) gives its logits, and its
        dropout, from its own loop; its states are the top output as the decoder saw it.
        """
        emb = self.embed_drop(self.embed(x))  # (B, T, E)
        if self.spec.needs_decoder:
            return self.rnn(emb, hidden, self.decoder)
        if lstmloop.uses_loop(self.rnn, emb):  # wide LSTM layers in bf16 on a CPU: faster
            out, hidden = lstmloop.lstm_forward(self.rnn, emb, hidden)
        else:
            out, hidden = self.rnn(emb, hidden)  # (B, T, H)
        return out, None, hidden

    def log_probs_from(self, top: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, T, V) from the top layer's output (B, T, H), dropout applied.

        A stepper that runs the recurrent layers itself (recording their states) gets the
        model's own output layer, whichever kind it is, through here.
        """
        if self.adaptive:
            flat = self.decoder.log_prob(_float32_or_wider(top.reshape(-1, top.size(-1))))
            return flat.view(*top.shape[:2], -1)
        return _log_softmax(self.decoder(top))

    def nll_from(self, top: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token -log p (B*T,) of ``targets`` (B, T) from the top layer's output (B, T, H)."""
        if self.adaptive:  # only the head and the targets' clusters are computed
            return -self.decoder(top.reshape(-1, top.size(-1)), targets.reshape(-1)).output
        return _cross_entropy(self.decoder(top), targets)

    def init_hidden(self, batch_size: int, device: torch.device | str = "cpu") -> Hidden:
        """The zero state, shaped as the cell carries it (``CellSpec.state_shapes``)."""
        shapes = self.spec.state_shapes(self.cfg, batch_size)
        return hidden_from_tensors([torch.zeros(s, device=device) for s in shapes])


def _float32_or_wider(t: torch.Tensor) -> torch.Tensor:
    """bf16 and fp16 (autocast) up to float32; float64 (the tests' checks) stays."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(_float32_or_wider(logits), dim=-1)


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none"
    )


def uses_adaptive_softmax(cfg: ModelConfig) -> bool:
    """Large vocabularies (word and subword models) get an adaptive softmax.

    A full softmax over V words costs H x V per token, several times the recurrent layers
    themselves; the adaptive one (Grave et al. 2017) computes a head of the most frequent
    ids and only the clusters the targets fall in. Ids must be in order of falling
    frequency, as the word tokenizer gives them. Tied weights keep the full softmax, and so
    does a cell that steps through the decoder: it feeds the whole distribution back.
    """
    if cfg.vocab_size < ADAPTIVE_MIN_VOCAB or cfg.tie_weights:
        return False
    return not registry.get(cfg.model).needs_decoder


def adaptive_cutoffs(vocab_size: int) -> list[int]:
    """A head of 2,000 ids, then clusters four times larger each: [2000, 8000, 32000, ...]."""
    cutoffs, c = [], 2000
    while c < vocab_size:
        cutoffs.append(c)
        c *= 4
    return cutoffs


def as_read(model: RNNLM, ids: np.ndarray) -> np.ndarray:
    """``ids`` in the order ``model`` reads them: reversed for a backward model (--reverse)."""
    ids = np.asarray(ids)
    return np.ascontiguousarray(ids[::-1]) if model.cfg.reverse else ids


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph at a window boundary, keeping the values.

    Otherwise backpropagation would reach back to the start of the corpus.
    """
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)  # type: ignore[return-value]
    return hidden.detach()


def hidden_tensors(hidden: Hidden) -> list[torch.Tensor]:
    return list(hidden) if isinstance(hidden, tuple) else [hidden]


def hidden_from_tensors(tensors: list[torch.Tensor]) -> Hidden:
    return (tensors[0], tensors[1]) if len(tensors) == 2 else tensors[0]


def hidden_arrays(hidden: Hidden, batch: int) -> list[np.ndarray]:
    """The first stream's state as float32 arrays (num_layers, batch, H), copied to ``batch``
    streams: h, then c for an LSTM (a Jordan network's context: (1, batch, V))."""
    return [
        np.ascontiguousarray(h[:, :1].float().cpu().numpy().repeat(batch, 1))
        for h in hidden_tensors(hidden)
    ]


def count_parameters(model: nn.Module, trained_only: bool = False) -> int:
    """Every weight (tied ones once), or only those the optimizer trains.

    An echo-state network's fixed reservoir counts in the total, every stored entry of it
    (zeros of its sparse matrix too), and not in the trained count.
    """
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique if p.requires_grad or not trained_only)
