"""The UPDeT / ODIS entity transformer block (algorithms.md §1.1).

Callers that read only some of the last block's outputs (the action head reads the own and
enemy tokens, the recurrence the history token) pass ``keep``: the last block then computes
queries, FFN and output only for those rows; keys and values still come from every token, so
the kept outputs are the same numbers (up to float summation order) for less arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

Keep = tuple[int, int]  # (front, back): the first ``front`` and the last ``back`` token rows


def kept_rows(n_tokens: int, keep: Keep | None, device: torch.device) -> torch.Tensor | None:
    """Indices of the rows ``keep`` names among ``n_tokens`` (None: every row)."""
    if keep is None or keep[0] + keep[1] >= n_tokens:
        return None
    front, back = keep
    return torch.cat([torch.arange(front, device=device),
                      torch.arange(n_tokens - back, n_tokens, device=device)])


class SelfAttention(nn.Module):
    """Multi-head attention whose heads each project to the full width, as in UPDeT."""

    def __init__(self, emb: int, heads: int):
        super().__init__()
        self.emb, self.heads = emb, heads
        self.to_q = nn.Linear(emb, emb * heads, bias=False)
        self.to_k = nn.Linear(emb, emb * heads, bias=False)
        self.to_v = nn.Linear(emb, emb * heads, bias=False)
        self.unify = nn.Linear(emb * heads, emb)
        # analysis: when set, the explicit softmax path runs and the post-softmax weights
        # [b, heads, t, t] are kept (detached) in ``last_attention``; off, the fused kernel runs
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None
        # a fused group's networks (vmapped) take the explicit path too: vmap has no batching
        # rule for the fused CPU kernel and would loop over the jobs
        self.explicit = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """x [b, t, emb], mask [b, t, t] → [b, t, emb]; with ``rows`` (query indices, r of
        them) → [b, r, emb], those rows only."""
        b, t, e = x.shape
        h = self.heads

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, z.shape[1], h, e).transpose(1, 2)

        xq = x if rows is None else x.index_select(1, rows)
        q, k, v = split(self.to_q(xq)), split(self.to_k(x)), split(self.to_v(x))
        if rows is not None and mask is not None:
            mask = mask.index_select(1, rows)
        bias = None
        if mask is not None:  # 0 where attention is forbidden
            bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device)
            bias = bias.masked_fill(mask == 0, -1e9).unsqueeze(1)
        if self.keep_attention or self.explicit:
            logits = q @ k.transpose(-1, -2) / e**0.5
            weights = torch.softmax(logits if bias is None else logits + bias, dim=-1)
            if self.keep_attention:
                self.last_attention = weights.detach()
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # scale 1/sqrt(emb)
        return self.unify(out.transpose(1, 2).reshape(b, xq.shape[1], h * e))


class TransformerBlock(nn.Module):
    """Post-LN block: x ← LN(x + Attn(x)); x ← LN(x + FFN(x)), FFN width 4·emb."""

    def __init__(self, emb: int, heads: int, ff_mult: int = 4):
        super().__init__()
        self.attention = SelfAttention(emb, heads)
        self.norm1 = nn.LayerNorm(emb)
        self.norm2 = nn.LayerNorm(emb)
        self.ff = nn.Sequential(
            nn.Linear(emb, ff_mult * emb), nn.ReLU(), nn.Linear(ff_mult * emb, emb)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """With ``rows``: the outputs of those rows only (see :class:`SelfAttention`)."""
        res = x if rows is None else x.index_select(1, rows)
        x = self.norm1(res + self.attention(x, mask, rows))
        return self.norm2(x + self.ff(x))


class Transformer(nn.Module):
    """``depth`` blocks followed by a per-token output Linear(emb → out)."""

    def __init__(self, emb: int, heads: int, depth: int, out: int):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(emb, heads) for _ in range(depth))
        self.to_out = nn.Linear(emb, out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                keep: Keep | None = None) -> torch.Tensor:
        """x [b, t, emb] → [b, t, out]; with ``keep`` → [b, front + back, out], the kept rows
        (every row while attention is being recorded for analysis)."""
        last = self.blocks[-1]
        rows = None if last.attention.keep_attention else kept_rows(x.shape[1], keep, x.device)
        for block in self.blocks[:-1]:
            x = block(x, mask)
        return self.to_out(last(x, mask, rows))
