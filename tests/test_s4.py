"""The S4 layer of MADS4 (marlbench/nets/s4.py) against the reference's own formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from marlbench.nets.s4 import S4, S4Block, _full, discretise, hippo_legs_nplr


def _legs(n: int) -> np.ndarray:
    """HiPPO-LegS A written out entry by entry (Gu et al. 2020, eq. for LegS):
    A_nk = -sqrt(2n+1) sqrt(2k+1) for n > k, -(n+1) on the diagonal, 0 above it."""
    a = np.zeros((n, n))
    for i in range(n):
        for k in range(n):
            if i > k:
                a[i, k] = -math.sqrt(2 * i + 1) * math.sqrt(2 * k + 1)
            elif i == k:
                a[i, k] = -(i + 1)
    return a


def test_hippo_legs_nplr_reconstructs_legs():
    n = 8
    w, p, b = hippo_legs_nplr(n)
    assert w.shape == p.shape == b.shape == (n // 2,)
    # the full state: A = diag(w, w̄) − p p*, which must equal LegS in the V basis; check the
    # spectrum of A + P Pᵀ (normal part) and the low-rank P instead of V itself
    q = np.arange(n)
    p_legs = np.sqrt(q + 0.5)
    normal = _legs(n) + np.outer(p_legs, p_legs)
    assert np.allclose(normal + normal.T, -np.eye(n))  # skew-symmetric minus I/2 (times 2)
    eig = np.linalg.eigvals(normal)
    eig = eig[np.argsort(eig.imag)]
    ours = _full(w).numpy()
    ours = ours[np.argsort(ours.imag)]
    assert np.allclose(eig, ours, atol=1e-9)
    assert np.allclose(w.real.numpy(), -0.5)
    assert (w.imag <= 0).all()  # the reference keeps the half sorted first by imaginary part
    # |V* p|² summed over both halves = |p|², and the same for B = sqrt(2n+1)
    assert math.isclose(2 * float((p.abs() ** 2).sum()), float((p_legs ** 2).sum()),
                        rel_tol=1e-9)
    assert math.isclose(2 * float((b.abs() ** 2).sum()), float((2 * q + 1).sum()), rel_tol=1e-9)


def test_bilinear_discretisation_by_hand():
    w = torch.tensor([-0.5 + 2j], dtype=torch.cdouble)
    p = torch.tensor([0.3 + 0.1j], dtype=torch.cdouble)
    b = torch.tensor([1.0 - 0.5j], dtype=torch.cdouble)
    dt = torch.tensor([0.05], dtype=torch.float64)
    d_a, d_b = discretise(w, p, b, dt)
    pf = np.array([0.3 + 0.1j, 0.3 - 0.1j])
    a = np.diag([-0.5 + 2j, -0.5 - 2j]) - np.outer(pf, pf.conj())
    back = np.eye(2) - 0.025 * a
    assert np.allclose(d_a[0].numpy(), np.linalg.solve(back, np.eye(2) + 0.025 * a))
    assert np.allclose(d_b[0].numpy(), 0.05 * np.linalg.solve(back, [1.0 - 0.5j, 1.0 + 0.5j]))


def _reference_kernel(layer: S4, length: int) -> torch.Tensor:
    """The kernel as SSKernelNPLR.forward computes it: Cauchy sums at the FFT nodes of the
    bilinear transform, the rank-1 Woodbury correction, 2 / (1 + ω), inverse real FFT."""
    dt = layer.log_dt.exp()
    w = layer.w[None] * dt[:, None]  # (H N/2)
    c = torch.view_as_complex(layer.C).to(torch.cdouble)
    p = layer.P[None].expand_as(c)
    q = p.conj()
    bb = layer.B[None].expand_as(c)
    omega = torch.exp(torch.tensor(-2j * math.pi / length)) ** torch.arange(length // 2 + 1)
    z = 2 * (1 - omega) / (1 + omega)

    def cauchy(v):  # Σ over both conjugate halves of v / (z − w)
        vf, wf = _full(v), _full(w)
        return (vf[..., None] / (z[None, None] - wf[..., None])).sum(-2)

    r_cb, r_qb = cauchy(c * bb) * dt[:, None], cauchy(q * bb) * dt[:, None]
    r_cp, r_qp = cauchy(c * p) * dt[:, None], cauchy(q * p) * dt[:, None]
    k_f = (r_cb - r_qb * r_cp / (1 + r_qp)) * 2 / (1 + omega)
    return torch.fft.irfft(k_f, n=length)


@pytest.mark.parametrize("length", [16, 50])
def test_kernel_equals_the_reference_frequency_domain_path(length):
    layer = S4(3, state=16, l_max=length, generator=torch.Generator().manual_seed(0))
    ours = layer.kernel(length).double()
    ref = _reference_kernel(layer, length)
    assert torch.allclose(ours, ref, atol=1e-4 * ref.abs().max().item())


def test_initial_output_matrix_is_the_drawn_one():
    """C̃ = C (I − Ā^L) at init, so the effective C the recurrence uses is the drawn C."""
    gen = torch.Generator().manual_seed(3)
    layer = S4(2, state=8, l_max=20, generator=gen)
    gen = torch.Generator().manual_seed(3)
    torch.rand(2, generator=gen, dtype=torch.float64)
    drawn = torch.randn(2, 4, generator=gen, dtype=torch.cdouble)
    d_a, _, inv = layer._discrete()
    c = torch.einsum("hn,hnm->hm", _full(torch.view_as_complex(layer.C).to(torch.cdouble)),
                     inv)
    assert torch.allclose(c[:, :4], drawn, atol=1e-5)
    assert torch.allclose(c[:, 4:], drawn.conj(), atol=1e-5)


def test_convolution_equals_recurrence():
    torch.manual_seed(0)
    layer = S4(4, state=16, l_max=30, generator=torch.Generator().manual_seed(1))
    u = torch.randn(2, 4, 30)
    y_conv = layer(u)
    x = layer.default_state(2)
    ys = []
    for t in range(30):
        y, x = layer.step(u[..., t], x)
        ys.append(y)
    assert torch.allclose(y_conv, torch.stack(ys, -1), atol=1e-4)
    block = S4Block(4, state=16, l_max=30, generator=torch.Generator().manual_seed(1))
    seq = torch.randn(2, 30, 4)
    out = block(seq)
    x = block.s4.default_state(2)
    steps = []
    for t in range(30):
        y, x = block.step(seq[:, t], x)
        steps.append(y)
    assert torch.allclose(out, torch.stack(steps, 1), atol=1e-4)


def test_only_c_and_d_learn_and_the_kernel_is_causal():
    layer = S4(2, state=8, l_max=12, generator=torch.Generator().manual_seed(0))
    assert {n for n, _ in layer.named_parameters()} == {"C", "D"}
    assert {"log_dt", "w", "P", "B"} <= {n for n, _ in layer.named_buffers()}
    dt = layer.log_dt.exp()
    assert ((dt >= 1e-3) & (dt <= 0.1)).all()
    u = torch.randn(1, 2, 12, generator=torch.Generator().manual_seed(1)).requires_grad_()
    y = layer(u)
    y[0, :, 5].sum().backward()
    g = u.grad[0]
    assert g[:, 6:].abs().max() < 1e-6 * g[:, :6].abs().max()  # zero up to FFT round-off
    assert layer.C.grad.abs().sum() > 0


def test_state_dict_round_trip_keeps_the_kernel():
    a = S4(2, state=8, l_max=10, generator=torch.Generator().manual_seed(0))
    b = S4(2, state=8, l_max=10, generator=torch.Generator().manual_seed(1))
    b.kernel(10)  # fills b's cache before the load
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.kernel(10), b.kernel(10))


def test_refuses_odd_state_and_bad_ranges():
    with pytest.raises(ValueError, match="even"):
        S4(2, state=7)
    with pytest.raises(ValueError, match="dt_min"):
        S4(2, dt_min=0.2, dt_max=0.1)


def test_acting_without_gradients_follows_every_change_of_c():
    layer = S4(2, state=8, l_max=10, generator=torch.Generator().manual_seed(0))
    u, x = torch.randn(3, 2), layer.default_state(3)
    with torch.no_grad():
        before, _ = layer.step(u, x)
        layer.C.mul_(2.0)  # an optimiser step changes C̃ in place
        after, _ = layer.step(u, x)
    fresh, _ = layer.step(u, x)  # the path with gradients computes C anew
    assert not torch.allclose(before, after)
    assert torch.allclose(after, fresh.detach(), atol=1e-6)
