"""A decoder-only transformer language model in plain PyTorch, with the playbook's variants.

Attention is ``full`` (causal, ``scaled_dot_product_attention``), ``window`` (causal
sliding window) or ``low_rank`` (keys and values projected through a shared ``rank``-wide
latent, Linformer's low-rank projection applied to the feature axis as DeepSeek's latent
attention does; projecting the sequence axis, as Linformer proper does, would let a token
see the future). Blocks are pre- or post-norm with LayerNorm or RMSNorm; the output layer
is tied to the token embedding.

Projections are separate ``nn.Linear`` layers named ``q``, ``k``, ``v``, ``out``, ``fc``
and ``proj`` so that tensor parallelism can shard them column- or row-wise; attention
reads its head count from its input's width, so it runs on a shard of the heads unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from trainables.transformer_lm.hparams import LmHyperparams


def make_norm(hp: LmHyperparams) -> nn.Module:
    if hp.norm_type == "rmsnorm":
        return nn.RMSNorm(hp.d_model)
    return nn.LayerNorm(hp.d_model)


def window_mask(seq_len: int, window: int, device: torch.device) -> torch.Tensor:
    """True where query ``i`` may attend key ``j``: ``i - window < j <= i``."""
    positions = torch.arange(seq_len, device=device)
    distance = positions[:, None] - positions[None, :]
    return (distance >= 0) & (distance < window)


class Attention(nn.Module):
    def __init__(self, hp: LmHyperparams) -> None:
        super().__init__()
        self.kind, self.window, self.head_dim = hp.attention, hp.window_size, hp.head_dim
        self.dropout = hp.dropout
        d = hp.d_model
        self.q = nn.Linear(d, d, bias=False)
        if hp.attention == "low_rank":
            self.kv_down = nn.Linear(d, hp.rank, bias=False)
            self.k = nn.Linear(hp.rank, d, bias=False)
            self.v = nn.Linear(hp.rank, d, bias=False)
        else:
            self.k = nn.Linear(d, d, bias=False)
            self.v = nn.Linear(d, d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.resid_dropout = nn.Dropout(hp.dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, width = x.shape
        return x.view(batch, seq_len, width // self.head_dim, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = x.shape
        source = self.kv_down(x) if self.kind == "low_rank" else x
        q, k, v = self._heads(self.q(x)), self._heads(self.k(source)), self._heads(self.v(source))
        dropout = self.dropout if self.training else 0.0
        if self.kind == "window":
            mask = window_mask(seq_len, self.window, x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(batch, seq_len, -1)
        return self.resid_dropout(self.out(y))  # type: ignore[no-any-return]


class Mlp(nn.Module):
    def __init__(self, hp: LmHyperparams) -> None:
        super().__init__()
        self.fc = nn.Linear(hp.d_model, hp.hidden, bias=False)
        self.proj = nn.Linear(hp.hidden, hp.d_model, bias=False)
        self.dropout = nn.Dropout(hp.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))  # type: ignore[no-any-return]


class Block(nn.Module):
    def __init__(self, hp: LmHyperparams) -> None:
        super().__init__()
        self.pre_norm = hp.norm == "pre"
        self.norm1, self.norm2 = make_norm(hp), make_norm(hp)
        self.attn, self.mlp = Attention(hp), Mlp(hp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))  # type: ignore[no-any-return]
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))  # type: ignore[no-any-return]


class TransformerLM(nn.Module):
    def __init__(self, hp: LmHyperparams) -> None:
        super().__init__()
        self.hp = hp
        self.tok_emb = nn.Embedding(hp.vocab_size, hp.d_model)
        self.pos_emb = nn.Embedding(hp.seq_len, hp.d_model)
        self.dropout = nn.Dropout(hp.dropout)
        self.blocks = nn.ModuleList(Block(hp) for _ in range(hp.n_layers))
        # Post-norm blocks end normalised already; pre-norm needs a final norm.
        self.norm_f = make_norm(hp) if hp.norm == "pre" else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2's initialisation: N(0, 0.02), residual outputs scaled by depth.
        residual_std = 0.02 / math.sqrt(2 * self.hp.n_layers)
        for name, parameter in self.named_parameters():
            if parameter.dim() < 2:
                continue
            std = residual_std if name.endswith(("out.weight", "proj.weight")) else 0.02
            nn.init.normal_(parameter, mean=0.0, std=std)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[batch, seq, vocab]`` for token ids ``[batch, seq]``; with ``targets``,
        the mean next-token cross-entropy instead.

        The loss is computed here so that ``torch.compile`` fuses it with the output layer
        and never writes the logits out in float32 (a large share of a step's memory
        traffic at GPT-2's vocabulary).
        """
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.dropout(self.tok_emb(tokens) + self.pos_emb(positions))
        for block in self.blocks:
            x = block(x)
        x = self.norm_f(x)
        logits = F.linear(x, self.tok_emb.weight)  # tied output layer
        if targets is None:
            return logits
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def count_parameters(model: nn.Module) -> int:
    """Parameters of the whole model (the tied output layer counted once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(hp: LmHyperparams, params: int) -> float:
    """Training FLOPs per token: 6N for the weights plus the attention scores (PaLM, app. B)."""
    attention_span = min(hp.window_size, hp.seq_len) if hp.attention == "window" else hp.seq_len
    return 6.0 * params + 12.0 * hp.n_layers * hp.d_model * attention_span
