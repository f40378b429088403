"""A minimal GPT trunk (minGPT-style, as MADT uses it; algorithms.md §3.2).

Causal pre-LN blocks: x += Attn(LN1(x)); x += MLP(LN2(x)), MLP = Linear(C, 2C) → GELU →
Linear(2C, C); attention with biased key/query/value/output projections of width C split over
the heads, scaled by 1/√(C / heads), causally masked. Token embeddings come from the caller;
the trunk adds a learned context-position embedding and a global-timestep embedding (both
initialised at zero), runs the blocks and a final LayerNorm. Dropout is 0 in MADT, so there is
none. Attention is written out (no fused kernel) so that ``vmap`` (a fused group) batches it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def gpt_init(module: nn.Module) -> None:
    """minGPT's initialisation: Linear/Embedding weights N(0, 0.02), biases 0, LayerNorm 1/0."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"the embedding width {n_embd} is not a multiple of {n_head} heads")
        self.n_head = n_head
        self.key = nn.Linear(n_embd, n_embd)
        self.query = nn.Linear(n_embd, n_embd)
        self.value = nn.Linear(n_embd, n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, T, C] → [N, T, C]; token t attends to tokens ≤ t."""
        n, t, c = x.shape
        h = self.n_head

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(n, t, h, c // h).transpose(1, 2)  # [N, h, T, C/h]

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(c // h)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(n, t, c))


class Block(nn.Module):
    """A causal pre-LN transformer block with a 2×-wide GELU MLP."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 2 * n_embd), nn.GELU(),
                                 nn.Linear(2 * n_embd, n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Tokens [N, T, C] and their episode timesteps [N, T] → features [N, T, C].

    ``block_size`` tokens at most per sequence; timesteps above ``max_timestep`` read the last
    row of the global-timestep table.
    """

    def __init__(self, n_embd: int, n_head: int, n_layer: int, block_size: int,
                 max_timestep: int):
        super().__init__()
        self.max_timestep = max_timestep
        self.pos_emb = nn.Parameter(torch.zeros(block_size, n_embd))
        self.global_pos_emb = nn.Parameter(torch.zeros(max_timestep + 1, n_embd))
        self.blocks = nn.Sequential(*[Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.apply(gpt_init)

    def forward(self, tokens: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.pos_emb.shape[0]:
            raise ValueError(f"{t} tokens exceed the context of {self.pos_emb.shape[0]}")
        steps = timesteps.clamp(0, self.max_timestep)
        x = tokens + self.pos_emb[:t] + self.global_pos_emb[steps]
        return self.ln_f(self.blocks(x))
