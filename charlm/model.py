"""The recurrent language model: embedding, a stack of LSTM/GRU/RNN layers, a decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from charlm.config import ModelConfig

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RNNLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, V), carrying a hidden state.

    Uses PyTorch's fused nn.LSTM / nn.GRU / nn.RNN: on a CPU it measured faster than
    every hand-written or compiled alternative.
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
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.decoder.weight = self.embed.weight
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.embed.weight, std=0.1)
        if self.cfg.model == "lstm":
            # Forget-gate bias 1 (Gers et al. 2000): the cell remembers by default.
            # PyTorch orders the gates (input, forget, cell, output) and adds two biases.
            h = self.cfg.hidden_size
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_"):
                    with torch.no_grad():
                        p.zero_()
                        if name.startswith("bias_ih"):
                            p[h : 2 * h] = 1.0

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        emb = self.drop(self.embed(x))  # (B, T, E)
        out, hidden = self.rnn(emb, hidden)  # (B, T, H)
        return self.decoder(self.drop(out)), hidden  # (B, T, V)

    def nll(
        self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """Per-token negative log-likelihood (B*T,) of targets ``y`` given inputs ``x``.

        Training and scoring go through here, so an output layer other than a full
        softmax (e.g. an adaptive softmax for large vocabularies) changes only this class.
        """
        logits, hidden = self(x, hidden)
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        return nll, hidden

    def log_probs(
        self, x: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """Next-token log-probabilities (B, T, V) over the whole vocabulary, for sampling."""
        logits, hidden = self(x, hidden)
        return torch.log_softmax(logits.float(), dim=-1), hidden

    def init_hidden(self, batch_size: int, device: torch.device | str = "cpu") -> Hidden:
        shape = (self.cfg.num_layers, batch_size, self.cfg.hidden_size)
        h = torch.zeros(shape, device=device)
        return (h, torch.zeros(shape, device=device)) if self.cfg.model == "lstm" else h


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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
