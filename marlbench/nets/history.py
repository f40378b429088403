"""The family's recurrent entity transformer: [own, enemies…, allies…, (extra…), history] →
transformer; the next history token is the output at the last position (UPDeT / ODIS / HiSSD
encoders and decoders)."""

from __future__ import annotations

import torch
from torch import nn

from marlbench.envs.maps import Layout
from marlbench.nets.entity import EntityTokenizer
from marlbench.nets.transformer import Keep, Transformer


def last_actions(actions: torch.Tensor) -> torch.Tensor:
    """Dataset actions [B, T, n] → the previous step's actions (−1 at t = 0)."""
    return torch.cat([torch.full_like(actions[:, :1], -1), actions[:, :-1]], dim=1)


class HistoryTransformer(nn.Module):
    """Entity tokens of one agent step plus a carried history token through a transformer."""

    def __init__(self, layouts: list[Layout], emb: int, heads: int, depth: int):
        super().__init__()
        self.emb = emb
        self.tokenizer = EntityTokenizer(layouts, emb)
        self.transformer = Transformer(emb, heads, depth, emb)

    def initial_hist(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(n, 1, self.emb, device=device)

    def step(self, tokens: torch.Tensor, hist: torch.Tensor, extra: torch.Tensor | None = None,
             keep: Keep | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [N, E, emb], hist [N, 1, emb], extra [N, k, emb] → outputs [N, E(+k)+1, emb]
        and the next history [N, 1, emb]. ``keep`` (front, 1): only the first ``front`` rows
        and the history row come out (the rest are not computed)."""
        parts = [tokens, hist] if extra is None else [tokens, extra, hist]
        out = self.transformer(torch.cat(parts, dim=1), keep=keep)
        return out, out[:, -1:]

    def unroll(self, obs: torch.Tensor, actions: torch.Tensor, layout: Layout,
               extra: torch.Tensor | None = None, keep: Keep | None = None) -> torch.Tensor:
        """obs [B, T, n, obs], dataset actions [B, T, n] (teacher-forced last actions), extra
        [B, T, n, k, emb] → outputs [B, T, n, tokens, emb] from a zero initial history
        (tokens: the kept rows with ``keep``, see :meth:`step`)."""
        b, t, n = obs.shape[:3]
        tokens = self.tokenizer(obs, last_actions(actions), layout)  # all steps at once
        steps = tokens.transpose(0, 1).reshape(t, b * n, -1, self.emb).unbind(0)
        extras = ([None] * t if extra is None
                  else extra.transpose(0, 1).reshape(t, b * n, -1, self.emb).unbind(0))
        hist = self.initial_hist(b * n, obs.device)
        outs = []
        for tokens_t, extra_t in zip(steps, extras, strict=True):
            out, hist = self.step(tokens_t, hist, extra_t, keep)
            outs.append(out)
        out = torch.stack(outs, dim=0)  # [T, B·n, tokens, emb]
        return out.view(t, b, n, *out.shape[2:]).transpose(0, 1)
