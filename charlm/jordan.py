"""The Jordan network: hidden layers fed by context units that hold the previous outputs.

Jordan (1986) fed the network's own previous output back into its hidden layer through
context units that decay. For a language model the output at step t is the next-token
distribution y_t = softmax(decoder(h_t)), so with the decay mu in [0, 1)::

    s_t = mu * s_{t-1} + y_{t-1}             context units (V of them), s_1 = mu * s_0
    h_t = tanh(W x_t + U s_t + b)            hidden layer 1; x_t is the token's embedding
    h^l_t = tanh(W^l h^{l-1}_t + U^l s_t + b^l)   layers l = 2..L: each sees the context too
    y_t = softmax(D h^L_t + d)               the decoder, the model's own output layer

There is no hidden-to-hidden matrix: everything carried from one step to the next passes
through the output distribution. Stacking gives every layer its own U^l on the one context
(the only recurrent state there is), so an upper layer is not a plain feed-forward layer
that could learn nothing about the past its lower layer did not pass up; the L products
U^l s_t are one matrix product per step.

The carried state is the context the next step will read, s_{T+1} = mu * s_T + y_T, shaped
(1, B, V) like a one-layer state whose width is the vocabulary: the trainer's per-stripe
resets (dim 1), checkpoints, data-parallel gathers and the steppers treat it as any other
state. The zero state is "no previous output".

Gradients flow through y fed back (backpropagation through the softmax, the textbook
Jordan net): the decoder's logits are computed inside the loop anyway, since the next step
needs them, so the backward pass through one (B, V) softmax per step adds little, while
detaching y would leave U trained only on what it sees, never on what it makes.
"""

from __future__ import annotations

import torch
from torch import nn

Decoder = nn.Module  # (B, H) -> (B, V) logits; the model's own nn.Linear


class JordanStack(nn.Module):
    """The L hidden layers of a Jordan network, stepped through the model's decoder.

    ``forward(emb, s, decoder)``: embeddings (B, T, E) and the carried context (1, B, V) ->
    the top layer's output after dropout (B, T, H), logits (B, T, V), the next context.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        vocab_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size, self.vocab_size, self.num_layers = hidden_size, vocab_size, num_layers
        self.decay = decay
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.inputs = nn.ModuleList(nn.Linear(n, hidden_size) for n in sizes)  # W^l, b^l
        self.context = nn.Linear(vocab_size, num_layers * hidden_size, bias=False)  # [U^l]
        self.drop = nn.Dropout(dropout)

    def forward(
        self, emb: torch.Tensor, s: torch.Tensor | None, decoder: Decoder
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, _ = emb.shape
        H = self.hidden_size
        if s is None:
            s = emb.new_zeros(1, B, self.vocab_size)
        ctx = s[0]  # (B, V)
        # Layer 1's input part depends only on the tokens: one product for all T steps.
        first = self.inputs[0](emb)  # (B, T, H)
        outs, logits = [], []
        for t in range(T):
            u = self.context(ctx)  # (B, L * H): every layer's U^l s_t at once
            h = torch.tanh(first[:, t] + u[:, :H])
            for layer in range(1, self.num_layers):
                pre = self.inputs[layer](self.drop(h)) + u[:, layer * H : (layer + 1) * H]
                h = torch.tanh(pre)
            h = self.drop(h)
            z = decoder(h)  # (B, V)
            y = torch.softmax(z, dim=-1)
            ctx = y if self.decay == 0 else self.decay * ctx + y
            outs.append(h)
            logits.append(z)
        return torch.stack(outs, 1), torch.stack(logits, 1), ctx[None]
