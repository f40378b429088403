"""The last block computes only the rows its readers use (``keep``): the kept outputs, and
so every learner's training, are the numbers the full computation gives."""

import pytest
import torch
from test_fused import _assert_state_close, _config, _separate

import marlbench.learners.stairs as stairs
import marlbench.nets.transformer as transformer
from marlbench.envs.maps import get_map
from marlbench.learners import LEARNERS
from marlbench.learners.stairs import StairsAgent
from marlbench.nets.transformer import Transformer, kept_rows


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_kept_rows_names_the_front_and_back_rows():
    assert kept_rows(7, (4, 1), torch.device("cpu")).tolist() == [0, 1, 2, 3, 6]
    assert kept_rows(7, (1, 0), torch.device("cpu")).tolist() == [0]
    assert kept_rows(5, (4, 1), torch.device("cpu")) is None  # every row: nothing to skip
    assert kept_rows(5, None, torch.device("cpu")) is None


@pytest.mark.parametrize("masked", [False, True])
def test_a_transformer_with_keep_gives_the_kept_rows_of_the_full_output(masked, float64):
    torch.manual_seed(0)
    net = Transformer(emb=8, heads=2, depth=2, out=5)
    x = torch.randn(6, 7, 8)
    mask = (torch.rand(6, 7, 7) > 0.3).double() if masked else None
    if mask is not None:
        mask[:, :, 0] = 1  # every query sees at least one key
    full = net(x, mask)
    kept = net(x, mask, keep=(3, 2))
    assert kept.shape == (6, 5, 5)
    torch.testing.assert_close(kept, full[:, [0, 1, 2, 5, 6]], rtol=1e-12, atol=1e-12)
    net.blocks[-1].attention.keep_attention = True  # analysis records every row
    assert net(x, mask, keep=(3, 2)).shape == full.shape


@pytest.mark.parametrize("spatial", [True, False])
def test_stairs_reasoning_with_kept_rows_matches_the_full_pass(spatial, float64):
    torch.manual_seed(0)
    lay = get_map("3m").layout
    agent = StairsAgent([lay], 8, 1, 2, 1, 5, spatial=spatial, temporal=True)
    x = torch.randn(4, 1 + lay.n_enemies + lay.n_agents - 1 + 2, 8)
    full = agent.reason(x, None)
    kept = agent.reason(x, None, front=1 + lay.n_enemies)
    rows = list(range(1 + lay.n_enemies)) + [x.shape[1] - 2, x.shape[1] - 1]
    torch.testing.assert_close(kept, full[:, rows], rtol=1e-12, atol=1e-12)


# learners without an entity transformer have no rows to prune
PRUNING = sorted(set(LEARNERS) - {"bc", "madt", "mads4", "omiga", "random"})


@pytest.mark.parametrize("name", PRUNING)
def test_training_with_kept_rows_matches_training_on_every_row(name, float64, monkeypatch):
    cfg, updates, steps = _config(name), 4, [4]
    pruned = []

    def counted(n, keep, device):
        rows = kept_rows(n, keep, device)
        pruned.append(rows is not None)
        return rows

    for module in (transformer, stairs):
        monkeypatch.setattr(module, "kept_rows", counted)
    saved, logged = _separate(name, 3, 0, cfg, updates, steps)
    assert any(pruned), f"{name}: no block skipped a row"  # the comparison is not vacuous
    for module in (transformer, stairs):
        monkeypatch.setattr(module, "kept_rows", lambda n, keep, device: None)
    all_saved, all_logged = _separate(name, 3, 0, cfg, updates, steps)
    for a, b in zip(logged, all_logged, strict=True):
        for key in a:
            if key not in ("task", "time_s"):
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-11), (name, key)
    _assert_state_close(saved[4], all_saved[4], name)
