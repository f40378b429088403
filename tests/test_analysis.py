"""`marlbench analyze attention | dormant` on checkpoints of a tiny trained suite."""

import json

import pytest
import torch
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.nets.transformer import SelfAttention

runner = CliRunner()


def test_explicit_attention_path_matches_the_fused_kernel():
    torch.manual_seed(0)
    attn = SelfAttention(16, 2)
    x = torch.randn(3, 5, 16)
    mask = torch.ones(3, 5, 5)
    mask[:, 1, :] = 0
    mask[:, :, 1] = 0
    fused = attn(x, mask)
    attn.keep_attention = True
    explicit = attn(x, mask)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    w = attn.last_attention
    assert w.shape == (3, 2, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 5))
    assert torch.allclose(w[:, :, 1], torch.full_like(w[:, :, 1], 0.2))  # masked row: uniform


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("an")
    suite = root / "s.yaml"
    suite.write_text(
        "name: an\nbackend: smax\ntask_sets: [toy]\nqualities: [scripted]\nseeds: [1]\n"
        "algorithms: [{name: stairs}, {name: bc_t}]\ndata: {episodes: 16, last_episodes: 16}\n"
        "training: {updates: 3, batch_episodes: 4}\nevaluation: {episodes: 8, interval: null}\n")
    result = runner.invoke(app, ["run", str(suite), "--data-dir", str(root / "data"),
                                 "--results", str(root / "r"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    ckpts = {}
    for job in (root / "r" / "runs" / "train").glob("*/job.json"):
        ckpts[json.loads(job.read_text())["config"]["algorithm"]] = (
            job.parent / "checkpoints" / "step_3.pt")
    return root, ckpts


@pytest.mark.parametrize("task", ["3m", "5m"])  # seen (its data) and unseen (roll-outs)
def test_attention_maps_for_every_stairs_pass(trained, task):
    root, ckpts = trained
    out = root / "figs"
    result = runner.invoke(app, ["analyze", "attention", str(ckpts["stairs"]), "--task", task,
                                 "--episodes", "4", "--out", str(out), "--data-dir",
                                 str(root / "data"), "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert sorted(r["passes"]) == ["f_high.attention pass 1", "f_low.attention pass 1",
                                   "f_low.attention pass 2"]
    for row in r["passes"].values():
        assert 0 <= row["history_mass"] <= 1
        assert 0 < row["row_entropy"] <= row["uniform_entropy"] + 1e-6
    assert len(r["files"]) == 3
    for f in r["files"]:
        assert open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("algorithm,layers", [
    ("stairs", {"f_low.ff_obs", "f_low.ff_hist", "f_high.ff_obs", "f_high.ff_hist"}),
    ("bc_t", {"transformer.blocks.0.ff"}),
])
def test_dormant_ratios_per_ffn_layer(trained, algorithm, layers):
    root, ckpts = trained
    result = runner.invoke(app, ["analyze", "dormant", str(ckpts[algorithm]), "--task", "3m",
                                 "--episodes", "8", "--data-dir", str(root / "data"), "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert set(r) == layers | {"all"}
    for row in r.values():
        assert 0 <= row["tau=0.0"] <= row["tau=0.025"] <= row["tau=0.1"] <= 1
        assert row["neurons"] > 0
    assert r["all"]["neurons"] == 256 * len(layers)


def test_analyze_names_the_problem(trained, tmp_path):
    root, ckpts = trained
    bad = runner.invoke(app, ["analyze", "dormant", str(ckpts["bc_t"]), "--task", "9m"])
    assert bad.exit_code == 2 and "not a test task of toy" in bad.output
    missing = runner.invoke(app, ["analyze", "attention", str(tmp_path / "x.pt"), "--task",
                                  "3m"])
    assert missing.exit_code == 2 and "checkpoint of a marlbench train job" in missing.output
