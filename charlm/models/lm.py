"""The recurrent language model: embedding, a stack of recurrent layers, a decoder.

The layers: LSTM, GRU, Elman RNN (torch's), the peephole LSTM (``charlm.models.peephole``), the
Jordan network (``charlm.models.jordan``).

``esn`` (the echo-state network) is the tanh RNN with its embedding and recurrent layers
fixed and random: ``charlm.models.esn`` draws and freezes them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlm.config.schema import LSTM_TYPES, ModelConfig
from charlm.models import esn, lstmloop
from charlm.models.jordan import JordanStack
from charlm.models.peephole import PeepholeLSTM

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_RNNS: dict[str, type[nn.Module]] = {
    "lstm": nn.LSTM,
    "gru": nn.GRU,
    "rnn": nn.RNN,
    "peephole": PeepholeLSTM,
    "esn": nn.RNN,
}
ADAPTIVE_MIN_VOCAB = 5000  # from this vocabulary size on, the output layer is adaptive


class RNNLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, V), carrying a hidden state.

    Uses PyTorch's fused nn.LSTM / nn.GRU / nn.RNN: on a CPU it measured faster than
    every hand-written or compiled alternative, but one: LSTM layers of 1,024 units or more
    training in bf16 on a CPU run charlm's own loop over nn.LSTM's weights
    (``charlm.models.lstmloop``). The peephole LSTM, which PyTorch lacks, is
    ``charlm.models.peephole.PeepholeLSTM``, shaped like nn.LSTM.
    """

    def __init__(self, cfg: ModelConfig, *, loading: bool = False) -> None:
        """``loading``: the weights are about to come from a checkpoint, so the echo-state
        network's reservoir is frozen but not drawn (its eigendecomposition takes a second)."""
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        self.drop = nn.Dropout(cfg.dropout)  # the top layer's output (self.rnn drops between)
        embed_p = cfg.dropout if cfg.embed_dropout is None else cfg.embed_dropout
        self.embed_drop = nn.Dropout(embed_p)
        self.rnn: nn.Module
        if cfg.model == "jordan":
            self.rnn = JordanStack(
                cfg.embed_size,
                cfg.hidden_size,
                cfg.vocab_size,
                cfg.num_layers,
                cfg.dropout,
                cfg.jordan_decay,
            )
        else:
            rnn_kwargs = {"nonlinearity": "tanh"} if cfg.model in ("rnn", "esn") else {}
            self.rnn = _RNNS[cfg.model](
                cfg.embed_size,
                cfg.hidden_size,
                num_layers=cfg.num_layers,
                dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
                batch_first=True,
                **rnn_kwargs,
            )
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
        self._init_weights(loading)

    def _init_weights(self, loading: bool) -> None:
        nn.init.normal_(self.embed.weight, std=0.1)
        if self.cfg.model in LSTM_TYPES:
            # Forget-gate bias 1 by default (Gers et al. 2000): the cell remembers until it
            # learns to forget. The gates are ordered (input, forget, cell, output) and there
            # are two biases: the values go in bias_ih, bias_hh stays 0.
            h = self.cfg.hidden_size
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_"):
                    with torch.no_grad():
                        p.zero_()
                        if name.startswith("bias_ih"):
                            p[:h] = self.cfg.input_bias
                            p[h : 2 * h] = self.cfg.forget_bias
        if self.cfg.model == "esn":
            if not loading:
                esn.init_reservoir(self.embed, self.rnn, self.cfg.spectral_radius)
            esn.freeze(self.embed, self.rnn)

    def features(
        self, x: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """The top layer's output (B, T, H), dropout applied, before the output layer."""
        states, logits, hidden = self._run(x, hidden)
        return (states if logits is not None else self.drop(states)), hidden

    def top_states(
        self, x: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """The top layer's hidden states h_1..h_T (B, T, H), before the output dropout."""
        states, _, hidden = self._run(x, hidden)
        return states, hidden

    def _run(
        self, x: torch.Tensor, hidden: Hidden | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, Hidden]:
        """The top layer's states, the logits if the recurrence computed them, the new state.

        A Jordan network's layers step through the decoder (jordan.py), so its logits and its
        dropout come out of its own loop; its states are the top output as the decoder saw it.
        """
        emb = self.embed_drop(self.embed(x))  # (B, T, E)
        if self.cfg.model == "jordan":
            return self.rnn(emb, hidden, self.decoder)
        if lstmloop.uses_loop(self.rnn, emb):  # wide LSTM layers in bf16 on a CPU: faster
            out, hidden = lstmloop.lstm_forward(self.rnn, emb, hidden)
        else:
            out, hidden = self.rnn(emb, hidden)  # (B, T, H)
        return out, None, hidden

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """Next-token scores (B, T, V) whose softmax is the model's distribution.

        With an adaptive softmax these are log-probabilities (valid logits: softmax of
        them gives the same distribution), computed over the whole vocabulary.
        """
        if self.adaptive:
            return self.log_probs(x, hidden)
        _, logits, hidden = self._scores(x, hidden)
        return logits, hidden  # (B, T, V)

    def _scores(
        self, x: torch.Tensor, hidden: Hidden | None
    ) -> tuple[torch.Tensor, torch.Tensor, Hidden]:
        """The top layer's states and the full softmax's logits (B, T, V)."""
        states, logits, hidden = self._run(x, hidden)
        if logits is None:
            logits = self.decoder(self.drop(states))
        return states, logits, hidden

    def nll(
        self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """Per-token negative log-likelihood (B*T,) of targets ``y`` given inputs ``x``.

        Training and scoring go through here, so an output layer other than a full
        softmax (e.g. an adaptive softmax for large vocabularies) changes only this class.
        """
        nll, _, hidden = self.nll_and_states(x, y, hidden)
        return nll, hidden

    def nll_and_states(
        self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, Hidden]:
        """``nll`` and the top layer's states (B, T, H) before dropout, for a state penalty."""
        if self.adaptive:  # only the head and the targets' clusters are computed
            states, hidden = self.top_states(x, hidden)
            out = self.drop(states)
            nll = -self.decoder(out.reshape(-1, out.size(-1)), y.reshape(-1)).output
            return nll, states, hidden
        states, logits, hidden = self._scores(x, hidden)
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        return nll, states, hidden

    def log_probs(
        self, x: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """Next-token log-probabilities (B, T, V) over the whole vocabulary, for sampling."""
        if self.adaptive:
            out, hidden = self.features(x, hidden)
            return self.output_log_probs(out), hidden
        logits, hidden = self(x, hidden)
        return torch.log_softmax(logits.float(), dim=-1), hidden

    def output_log_probs(self, out: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, T, V) from the top layer's output (B, T, H).

        A stepper that runs the recurrent layers itself (recording their states) gets the
        model's own output layer, whichever kind it is, through here.
        """
        if self.adaptive:
            flat = self.decoder.log_prob(out.reshape(-1, out.size(-1)).float())
            return flat.view(*out.shape[:2], -1)
        return torch.log_softmax(self.decoder(out).float(), dim=-1)

    def init_hidden(self, batch_size: int, device: torch.device | str = "cpu") -> Hidden:
        if self.cfg.model == "jordan":  # the context units: one per vocabulary entry
            return torch.zeros((1, batch_size, self.cfg.vocab_size), device=device)
        shape = (self.cfg.num_layers, batch_size, self.cfg.hidden_size)
        h = torch.zeros(shape, device=device)
        return (h, torch.zeros(shape, device=device)) if self.cfg.model in LSTM_TYPES else h


def uses_adaptive_softmax(cfg: ModelConfig) -> bool:
    """Large vocabularies (word and subword models) get an adaptive softmax.

    A full softmax over V words costs H x V per token, several times the recurrent layers
    themselves; the adaptive one (Grave et al. 2017) computes a head of the most frequent
    ids and only the clusters the targets fall in. Ids must be in order of falling
    frequency, as the word tokenizer gives them. Tied weights keep the full softmax, and so
    does a Jordan network: it feeds the whole distribution back at every step.
    """
    return cfg.vocab_size >= ADAPTIVE_MIN_VOCAB and not cfg.tie_weights and cfg.model != "jordan"


def adaptive_cutoffs(vocab_size: int) -> list[int]:
    """A head of 2,000 ids, then clusters four times larger each: [2000, 8000, 32000, ...]."""
    cutoffs, c = [], 2000
    while c < vocab_size:
        cutoffs.append(c)
        c *= 4
    return cutoffs


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
    streams: h, then c for an LSTM."""
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
