"""The recurrent language model: embedding, a stack of LSTM/GRU/RNN/peephole layers, a decoder."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from charlm.config import LSTM_TYPES, ModelConfig
from charlm.peephole import PeepholeLSTM

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_RNNS: dict[str, type[nn.Module]] = {
    "lstm": nn.LSTM,
    "gru": nn.GRU,
    "rnn": nn.RNN,
    "peephole": PeepholeLSTM,
}
ADAPTIVE_MIN_VOCAB = 5000  # from this vocabulary size on, the output layer is adaptive


class RNNLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, V), carrying a hidden state.

    Uses PyTorch's fused nn.LSTM / nn.GRU / nn.RNN: on a CPU it measured faster than
    every hand-written or compiled alternative. The peephole LSTM, which PyTorch lacks, is
    ``charlm.peephole.PeepholeLSTM``, shaped like nn.LSTM.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        self.drop = nn.Dropout(cfg.dropout)
        rnn_kwargs = {"nonlinearity": "tanh"} if cfg.model == "rnn" else {}
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
        self._init_weights()

    def _init_weights(self) -> None:
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

    def features(
        self, x: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """The top layer's output (B, T, H), dropout applied, before the output layer."""
        emb = self.drop(self.embed(x))  # (B, T, E)
        out, hidden = self.rnn(emb, hidden)  # (B, T, H)
        return self.drop(out), hidden

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """Next-token scores (B, T, V) whose softmax is the model's distribution.

        With an adaptive softmax these are log-probabilities (valid logits: softmax of
        them gives the same distribution), computed over the whole vocabulary.
        """
        if self.adaptive:
            return self.log_probs(x, hidden)
        out, hidden = self.features(x, hidden)
        return self.decoder(out), hidden  # (B, T, V)

    def nll(
        self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """Per-token negative log-likelihood (B*T,) of targets ``y`` given inputs ``x``.

        Training and scoring go through here, so an output layer other than a full
        softmax (e.g. an adaptive softmax for large vocabularies) changes only this class.
        """
        if self.adaptive:  # only the head and the targets' clusters are computed
            out, hidden = self.features(x, hidden)
            return -self.decoder(out.reshape(-1, out.size(-1)), y.reshape(-1)).output, hidden
        logits, hidden = self(x, hidden)
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        return nll, hidden

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
        shape = (self.cfg.num_layers, batch_size, self.cfg.hidden_size)
        h = torch.zeros(shape, device=device)
        return (h, torch.zeros(shape, device=device)) if self.cfg.model in LSTM_TYPES else h


def uses_adaptive_softmax(cfg: ModelConfig) -> bool:
    """Large vocabularies (word and subword models) get an adaptive softmax.

    A full softmax over V words costs H x V per token, several times the recurrent layers
    themselves; the adaptive one (Grave et al. 2017) computes a head of the most frequent
    ids and only the clusters the targets fall in. Ids must be in order of falling
    frequency, as the word tokenizer gives them. Tied weights keep the full softmax.
    """
    return cfg.vocab_size >= ADAPTIVE_MIN_VOCAB and not cfg.tie_weights


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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
