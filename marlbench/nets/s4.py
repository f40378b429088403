"""S4 as MADS4 uses it: a HiPPO-LegS state-space layer with the NPLR parameterisation.

Facts from ``ashmita695/MADS4`` at 387e44c (``s4_module/kernel.py``, ``hippo.py``, ``s4_module.py``;
``gym/decision_transformer/models/s4_muj.py``, ``S4_Block``):

- A = diag(w) − P P* (normal plus rank 1) from HiPPO-LegS (``hippo.nplr('legs', N)``), kept
  as N/2 conjugate pairs; B = V* B_LegS; log Δ ~ U[log 1e-3, log 0.1] per channel; one copy of
  (w, P, B) shared by all H channels (``n_ssm 1``); C ~ complex normal (H, N/2); D ~ N(0, 1).
- Bilinear discretisation: Ā = (I − ΔA/2)⁻¹(I + ΔA/2), B̄ = (I − ΔA/2)⁻¹ΔB.
- The trained output matrix is C̃ = C (I − Ā^L) at the kernel's length L = ``l_max``
  (``SSKernelNPLR._setup_C``), so the kernel is K_l = C̃ (I − Ā^L)⁻¹ Ā^l B̄, l < L.
- MADS4 builds its kernels with ``trainable=None``, which ``SSKernelNPLR`` reads as "nothing
  trainable": A, P, B and Δ are buffers, only C̃ and D learn (the paper's "A frozen" holds
  throughout). The same here.
- ``linear=True``: the layer is y = K ∗ u + D u, no activation or output mixing inside it;
  ``S4_Block`` adds GELU → Dropout → Linear(H, H) → GELU after it (no norm, no residual by
  default).

Computation: with A, B and Δ fixed the kernel is a fixed linear map of C̃. Its basis
W = (I − Ā^L)⁻¹ Ā^l B̄ is built once in double precision (dense N × N, the reference's
``setup_step(mode='dense')`` path) and the kernel is 2·Re(C̃ W) over the conjugate half. The
reference evaluates the same kernel every forward pass in the frequency domain (Cauchy kernel
and Woodbury identity, single precision); both are the same function of the parameters
(``tests/test_s4.py`` checks this against that path). The convolution runs as an FFT of length
2L; ``step`` is the recurrence x_k = Ā x_{k−1} + B̄ u_k, y_k = Re(C x_k) + D u_k with
C = C̃ (I − Ā^L)⁻¹ on the full state, as the reference's dense stepping.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def hippo_legs_nplr(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(w, P, B) of HiPPO-LegS in NPLR form, N/2 conjugate pairs (``hippo.nplr``): the
    eigen-decomposition V diag(w) V* of A + P Pᵀ (skew-symmetric plus -1/2 I), eigenvalues
    sorted by imaginary part and the first half kept, B and P rotated by V*."""
    if n < 2 or n % 2:
        raise ValueError(f"the state size N must be even and at least 2, not {n}")
    q = np.arange(n, dtype=np.float64)
    col, row = np.meshgrid(q, q)
    m = -(np.where(row >= col, 2 * q + 1, 0) - np.diag(q))
    t = np.sqrt(2 * q + 1)
    a = t[:, None] * m / t[None, :]  # T M T⁻¹
    b = t.copy()
    p = np.sqrt(q + 0.5)
    ap = torch.as_tensor(a + np.outer(p, p))
    w, v = torch.linalg.eig(ap)
    order = torch.sort(w.imag, stable=True).indices
    w, v = w[order][: n // 2], v[:, order][:, : n // 2]
    v_inv = v.conj().T
    return w, v_inv @ torch.as_tensor(p).to(v), v_inv @ torch.as_tensor(b).to(v)


def _full(x: torch.Tensor) -> torch.Tensor:
    """The conjugate pairs' full vector: (x, x̄) on the last axis."""
    return torch.cat([x, x.conj()], dim=-1)


def discretise(w: torch.Tensor, p: torch.Tensor, b: torch.Tensor,
               dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear Ā [H, N, N] and B̄ [H, N] of A = diag(w̄ᶠ) − pᶠ pᶠ* on the full state."""
    wf, pf, bf = _full(w), _full(p), _full(b)
    a = torch.diag_embed(wf) - torch.outer(pf, pf.conj())
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    half = dt.to(a.dtype)[:, None, None] / 2 * a
    backward, forward = eye - half, eye + half
    d_a = torch.linalg.solve(backward, forward)
    d_b = dt.to(a.dtype)[:, None] * torch.linalg.solve(backward, bf.expand(len(dt), -1))
    return d_a, d_b


class S4(nn.Module):
    """The S4 layer of MADS4's blocks (``S4(..., linear=True, mode='nplr')``): y = K ∗ u + D u
    on [B, H, L] inputs, with ``step`` for recurrent acting."""

    def __init__(self, channels: int, state: int = 64, l_max: int = 50,
                 dt_min: float = 1e-3, dt_max: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        if channels < 1 or l_max < 1:
            raise ValueError("S4 needs at least one channel and a kernel length l_max >= 1")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, not {dt_min}, {dt_max}")
        self.channels, self.state, self.l_max = channels, state, l_max
        w, p, b = hippo_legs_nplr(state)
        log_dt = (torch.rand(channels, generator=generator, dtype=torch.float64)
                  * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        c = torch.randn(channels, state // 2, generator=generator, dtype=torch.cdouble)
        self.register_buffer("log_dt", log_dt)
        self.register_buffer("w", w)
        self.register_buffer("P", p)
        self.register_buffer("B", b)
        self._cache: dict = {}
        self.register_load_state_dict_post_hook(lambda module, keys: module._cache.clear())
        _, _, inv = self._discrete()
        # C̃ = C (I − Ā^L), stored as the reference stores it: the first conjugate half
        c_tilde = torch.linalg.solve(inv.transpose(-1, -2), _full(c))[:, : state // 2]
        self.C = nn.Parameter(torch.view_as_real(c_tilde.to(torch.cfloat)).contiguous())
        self.D = nn.Parameter(torch.randn(channels, generator=generator))

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Ā, B̄, (I − Ā^L)⁻¹) in double precision on the CPU, from the fixed buffers."""
        if "discrete" not in self._cache:
            d_a, d_b = discretise(self.w.cpu(), self.P.cpu(), self.B.cpu(),
                                  self.log_dt.cpu().exp())
            eye = torch.eye(self.state, dtype=d_a.dtype)
            inv = torch.linalg.inv(eye - torch.linalg.matrix_power(d_a, self.l_max))
            self._cache["discrete"] = (d_a, d_b, inv)
        return self._cache["discrete"]

    def _basis(self, length: int, device: torch.device) -> torch.Tensor:
        """W[h, n, l] = ((I − Ā^L)⁻¹ Ā^l B̄)[h, n] over the first conjugate half, l < length."""
        key = ("basis", length, str(device))
        if key not in self._cache:
            d_a, d_b, inv = self._discrete()
            krylov, power = d_b[..., None], d_a  # Ā^l B̄ [H, N, l], doubled: log2 L products
            while krylov.shape[-1] < length:
                krylov = torch.cat([krylov, power @ krylov], dim=-1)
                power = power @ power
            krylov = krylov[..., :length]
            basis = torch.einsum("hnm,hml->hnl", inv, krylov)[:, : self.state // 2]
            self._cache[key] = basis.to(device=device, dtype=torch.cfloat)
        return self._cache[key]

    def _stepping(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("step", str(device))
        if key not in self._cache:
            self._cache[key] = tuple(t.to(device=device, dtype=torch.cfloat)
                                     for t in self._discrete())
        return self._cache[key]

    def kernel(self, length: int) -> torch.Tensor:
        """K [H, length] = 2·Re(C̃ W)."""
        c = torch.view_as_complex(self.C)
        return 2 * torch.einsum("hn,hnl->hl", c, self._basis(length, self.C.device)).real

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u [B, H, L] → y [B, H, L] (causal convolution by FFT of length 2L)."""
        length = u.shape[-1]
        k = self.kernel(length)
        y = torch.fft.irfft(torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(k, n=2 * length),
                            n=2 * length)[..., :length]
        return y + u * self.D[:, None]

    def default_state(self, batch: int) -> torch.Tensor:
        """The zero state [batch, H, N] (complex, full state)."""
        return torch.zeros(batch, self.channels, self.state, dtype=torch.cfloat,
                           device=self.C.device)

    def step(self, u: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step: u [B, H], x [B, H, N] → (y [B, H], next x)."""
        d_a, d_b, _ = self._stepping(u.device)
        x = torch.einsum("hnm,bhm->bhn", d_a, x) + d_b * u[..., None].to(x.dtype)
        return torch.einsum("hn,bhn->bh", self._output(u.device), x).real + u * self.D, x

    def _output(self, device: torch.device) -> torch.Tensor:
        """C = C̃ (I − Ā^L)⁻¹ on the full state [H, N]; kept while C̃ is unchanged (its
        version counter) and no gradient is asked for, which halves an acting step."""
        inv = self._stepping(device)[2]
        if torch.is_grad_enabled() and self.C.requires_grad:
            return torch.einsum("hn,hnm->hm", _full(torch.view_as_complex(self.C)), inv)
        key = ("output", self.C._version, self.C.data_ptr(), str(device))
        if key not in self._cache:
            for old in [k for k in self._cache if k[0] == "output"]:
                del self._cache[old]
            self._cache[key] = torch.einsum("hn,hnm->hm",
                                            _full(torch.view_as_complex(self.C.detach())), inv)
        return self._cache[key]


class S4Block(nn.Module):
    """MADS4's ``S4_Block`` with its defaults: S4 → GELU → Dropout → Linear(H, H) → GELU, on
    [B, L, H] sequences; ``step`` carries the S4 state for acting one step at a time."""

    def __init__(self, channels: int, state: int = 64, l_max: int = 50, dropout: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.s4 = S4(channels, state, l_max, generator=generator)
        self.after = nn.Sequential(nn.GELU(), nn.Dropout(dropout) if dropout > 0 else
                                   nn.Identity(), nn.Linear(channels, channels), nn.GELU())

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.after(self.s4(u.transpose(-1, -2)).transpose(-1, -2))

    def step(self, u: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, x = self.s4.step(u, x)
        return self.after(y), x
