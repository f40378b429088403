"""`marlbench data inspect | import | list`, the streaming reader, imported data in suites."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ODIS, ODIS_3M, odis_runs
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.data.dataset import LazyEpisodes, TaskData, load_episodes, load_task_data
from marlbench.data.format import DatasetError
from marlbench.envs.maps import get_map

runner = CliRunner()


def _need_odis():
    if not ODIS_3M.exists():
        pytest.skip("ODIS samples not present")


def test_inspect_the_public_3m_medium_file():
    _need_odis()
    result = runner.invoke(app, ["data", "inspect", str(ODIS_3M / "part_0.h5"), "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert r["episodes"] == 2000
    assert r["mean_return"] == pytest.approx(14.0, abs=0.01)
    assert r["episode_length"]["mean"] == pytest.approx(26.2, abs=0.05)
    assert r["task"] == "3m" and r["time_outs"] == 47
    # protocol.md: 54 % of the episodes reach about 20, i.e. were won
    assert r["win_rate"] == pytest.approx(0.54, abs=0.01)
    assert r["keys"]["obs"]["shape"] == [2000, 61, 3, 30] and r["keys"]["obs"]["compression"] \
        == "gzip"
    assert r["checksum"].startswith("no manifest")


def test_inspect_every_public_sample():
    runs = odis_runs()
    if not runs:
        pytest.skip("ODIS samples not present")
    for run in runs:
        result = runner.invoke(app, ["data", "inspect", str(run), "--json"])
        assert result.exit_code == 0, (run, result.output)
        r = json.loads(result.output)
        assert r["episodes"] == 2000 and r["win_rate"] is not None


def test_inspect_a_truncated_file_is_a_clear_error(tmp_path):
    _need_odis()
    cut = tmp_path / "3m" / "medium" / "run"
    cut.mkdir(parents=True)
    data = (ODIS_3M / "part_0.h5").read_bytes()
    (cut / "part_0.h5").write_bytes(data[: len(data) // 2])
    result = runner.invoke(app, ["data", "inspect", str(cut / "part_0.h5")])
    assert result.exit_code == 2
    assert "part_0.h5" in result.output and "corrupt or truncated" in result.output


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    if not ODIS.exists():
        pytest.skip("ODIS samples not present")
    data_dir = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["data", "import", "odis", str(ODIS), "--data-dir",
                                 str(data_dir)])
    assert result.exit_code == 0, result.output
    return data_dir


def test_import_odis_copies_unchanged_and_writes_manifests(imported):
    runs = odis_runs()
    for run in runs:
        task, quality = run.parent.parent.name, run.parent.name
        dest = imported / "odis" / task / quality / run.name
        assert (dest / "part_0.h5").read_bytes() == (run / "part_0.h5").read_bytes()
        m = json.loads((dest / "manifest.json").read_text())
        assert m["source"] == "odis" and m["episodes"] == 2000 and m["task"] == task
        assert m["behaviour_policy"]["name"] == "qmix"
    m3 = json.loads((imported / "odis/3m/medium" / ODIS_3M.name / "manifest.json").read_text())
    assert m3["mean_return"] == pytest.approx(14.0, abs=0.01)
    again = runner.invoke(app, ["data", "import", "odis", str(ODIS), "--data-dir",
                                str(imported)])
    assert again.exit_code == 0 and "already imported" in again.output


def test_list_shows_imported_runs(imported):
    result = runner.invoke(app, ["data", "list", "--data-dir", str(imported)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if "│ odis" in line]
    assert len(rows) == len(odis_runs()) and any("cn-4" in r and "qmix" in r for r in rows)
    assert "incomplete" not in result.output


def test_flipped_byte_in_an_imported_part_is_reported(imported, tmp_path):
    src = imported / "odis" / "cn-2" / "expert"
    copy = tmp_path / "odis" / "cn-2" / "expert"
    shutil.copytree(src, copy)
    run = next(copy.iterdir())
    data = bytearray((run / "part_0.h5").read_bytes())
    data[len(data) - 5000] ^= 0x10  # inside the compressed chunks
    (run / "part_0.h5").write_bytes(bytes(data))
    result = runner.invoke(app, ["data", "inspect", str(run), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["checksum"].startswith("MISMATCH")
    with pytest.raises(DatasetError, match="sha256"):
        load_task_data([(run, 2000)])


def test_import_rejects_a_folder_outside_the_odis_layout(tmp_path):
    bad = tmp_path / "notamap" / "medium" / "run"
    bad.mkdir(parents=True)
    (bad / "part_0.h5").write_bytes(b"")
    result = runner.invoke(app, ["data", "import", "odis", str(tmp_path), "--data-dir",
                                 str(tmp_path / "d")])
    assert result.exit_code == 2 and "<map>/<quality>/<run>" in result.output


def test_streaming_reader_gives_the_same_batches_as_memory():
    _need_odis()
    mem = TaskData(load_episodes(ODIS_3M, last=600))
    lazy = TaskData(LazyEpisodes(ODIS_3M, last=600))
    for seed in range(3):
        a = mem.sample(32, np.random.default_rng(seed))
        b = lazy.sample(32, np.random.default_rng(seed))
        for key in ("obs", "state", "actions", "avail", "reward", "terminated", "filled"):
            assert getattr(a, key).equal(getattr(b, key)), key


def test_reader_streams_when_the_dataset_exceeds_the_memory_budget(monkeypatch):
    _need_odis()
    monkeypatch.setenv("MARLBENCH_DATA_MEMORY_GB", "0.001")
    data = load_task_data([(ODIS_3M, 2000)], get_map("3m").layout, "3m")
    assert isinstance(data.sources[0], LazyEpisodes)
    monkeypatch.setenv("MARLBENCH_DATA_MEMORY_GB", "4")
    assert not isinstance(load_task_data([(ODIS_3M, 2000)]).sources[0], LazyEpisodes)


def test_data_for_another_map_is_refused_with_the_mismatch_named():
    _need_odis()
    with pytest.raises(DatasetError, match="obs width 30 .task 5m has 50"):
        load_task_data([(ODIS_3M, 2000)], get_map("5m").layout, "5m")


def test_a_suite_can_train_on_imported_real_data(imported, tmp_path):
    """The CN task set pointed at the imported ODIS samples: plan, train, evaluate."""
    suite = tmp_path / "cn.yaml"
    suite.write_text(
        "name: cn_imported\nbackend: grid\ntask_sets: [cn]\nqualities: [expert]\nseeds: [1]\n"
        "algorithms: [{name: bc_t}]\ndata: {imported: {cn: odis}, last_episodes: 200}\n"
        "training: {updates: 6, batch_episodes: 8}\nevaluation: {episodes: 8, interval: null}\n")
    args = ["run", str(suite), "--data-dir", str(imported), "--results",
            str(tmp_path / "results"), "--workers", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    job = next((tmp_path / "results" / "runs" / "train").glob("*/job.json"))
    sources = json.loads(job.read_text())["config"]["datasets"]["cn-2"]
    assert sources[0]["dir"].startswith("odis/cn-2/expert/") and sources[0]["last"] == 200
    report = runner.invoke(app, ["report", str(tmp_path / "results"), "--format", "json"])
    assert report.exit_code == 0, report.output


def test_a_suite_needing_missing_imports_says_how_to_import(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nbackend: grid\ntask_sets: [cn]\nqualities: [expert]\nseeds: [1]\n"
        "algorithms: [{name: bc_t}]\ndata: {imported: {cn: odis}}\n")
    result = runner.invoke(app, ["run", str(suite), "--data-dir", str(tmp_path / "none"),
                                 "--dry-run"])
    assert result.exit_code == 2
    assert "marlbench data import odis" in result.output


def _odis_as_vault(eps, path):
    """Write episodes as an OG-MARL vault: one flat time series, per-agent reward and flags."""
    flashbax = pytest.importorskip("flashbax")
    del flashbax
    import jax.numpy as jnp
    from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
    from flashbax.vault import Vault

    rows = []
    for e in range(eps.n_episodes):
        n = int(eps.lengths[e]) - 1  # transitions
        rows.append({"obs": eps.obs[e, :n], "state": eps.state[e, :n],
                     "act": eps.actions[e, :n], "legal": eps.avail_actions[e, :n],
                     "rew": eps.reward[e, :n], "term": eps.terminated[e, :n]})
    cat = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    n_agents = eps.obs.shape[2]

    def per_agent(x):
        return jnp.asarray(np.repeat(x[:, None], n_agents, 1))[None]

    exp = {"observations": jnp.asarray(cat["obs"])[None], "actions": jnp.asarray(cat["act"])[None],
           "rewards": per_agent(cat["rew"]), "terminals": per_agent(cat["term"].astype(bool)),
           "truncations": per_agent(np.zeros_like(cat["term"], bool)),
           "infos": {"legals": jnp.asarray(cat["legal"].astype(bool))[None],
                     "state": jnp.asarray(cat["state"])[None]}}
    size = cat["obs"].shape[0]
    state = TrajectoryBufferState(experience=exp, current_index=jnp.array(size),
                                  is_full=jnp.array(False))
    Vault(path.name, experience_structure=exp, rel_dir=str(path.parent), vault_uid="Good"
          ).write(state)


def test_og_marl_vault_round_trip(tmp_path):
    _need_odis()
    source = load_episodes(ODIS_3M, last=None).select(slice(0, 40))
    vault = tmp_path / "vaults" / "3m.vlt"
    _odis_as_vault(source, vault)
    result = runner.invoke(app, ["data", "import", "og-marl", str(vault), "--task", "3m",
                                 "--uid", "Good", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    run = tmp_path / "data" / "og-marl" / "3m" / "good" / "3m.vlt-Good"
    got = load_episodes(run, last=None)
    assert got.n_episodes == 40
    np.testing.assert_array_equal(got.lengths, source.lengths)
    np.testing.assert_array_equal(got.terminated, source.terminated)
    rows = (np.arange(61)[None] < (source.lengths - 1)[:, None])  # transition rows
    for key in ("obs", "state", "actions", "avail_actions", "reward"):
        np.testing.assert_array_equal(getattr(got, key)[rows], getattr(source, key)[rows])
    m = json.loads((run / "manifest.json").read_text())
    assert m["source"] == "og-marl" and m["win_rate"] is not None
    assert m["mean_return"] == pytest.approx(float(source.returns.mean()), rel=1e-5)


def test_og_marl_import_names_a_missing_key(tmp_path, monkeypatch):
    from marlbench.data import importers

    monkeypatch.setattr(importers, "_vault_experience",
                        lambda path, uid: {"observations": np.zeros((1, 5, 3, 30))})
    (tmp_path / "v.vlt").mkdir()
    result = runner.invoke(app, ["data", "import", "og-marl", str(tmp_path / "v.vlt"),
                                 "--task", "3m", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and "lacks key(s) actions" in result.output


def test_data_collect_dry_run_and_bad_input(tmp_path):
    args = ["data", "collect", "--task-set", "marine_easy", "--quality", "medium-expert",
            "--profile", "quick", "--data-dir", str(tmp_path), "--dry-run"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "9 data job(s)" in result.output  # per seen task: behaviour run, medium, expert
    assert result.output.count("behaviour ") == 3
    bad = runner.invoke(app, ["data", "collect", "--task-set", "marine_hardest", "--quality",
                              "expert"])
    assert bad.exit_code == 2 and "unknown task set 'marine_hardest'" in bad.output
    none = runner.invoke(app, ["data", "collect"])
    assert none.exit_code == 2 and "--task-set and --quality" in none.output
    profile = runner.invoke(app, ["data", "collect", "--task-set", "toy", "--quality",
                                  "expert", "--profile", "huge"])
    assert profile.exit_code == 2 and "quick, paper" in profile.output


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_suite_profiles_match_the_built_in_data_budgets(root, profile):
    from marlbench.data.profiles import DATA_PROFILES
    from marlbench.suite import DataSettings, load_suite

    suite = load_suite(root / "suites" / "smac_multitask.yaml", profile)
    assert suite.data == DataSettings.model_validate(DATA_PROFILES[profile])


@pytest.mark.parametrize("profile", [None, "quick", "paper"])
def test_ablation_suite_shares_the_main_suites_data(root, profile):
    from marlbench.suite import load_suite

    main = load_suite(root / "suites" / "smac_multitask.yaml", profile)
    ablation = load_suite(root / "suites" / "smac_multitask_ablation.yaml", profile)
    assert ablation.data == main.data and set(ablation.task_sets) <= set(main.task_sets)
    assert ablation.qualities == main.qualities
    assert [a.name for a in main.algorithms] == ["bc_t", "updet_m", "odis", "hissd", "stairs"]
    assert [a.name for a in ablation.algorithms] == ["stairs"] * 6


def test_og_marl_rware_vault_round_trip(tmp_path):
    """A warehouse vault (OG-MARL's re-hosted AlberDICE sets) made from real rware episodes
    imports to the ODIS layout with the task's backend, no win rate and its standardisation."""
    pytest.importorskip("rware")
    from marlbench.envs.maps import get_map
    from marlbench.envs.rware import RwareEnv
    from marlbench.rollout import rollout

    env = RwareEnv(get_map("rware-tiny-2ag"), 2, reward="alberdice")
    rng = np.random.default_rng(0)
    source = rollout(env, lambda r: rng.integers(0, 5, r.avail_actions.shape[:2]), 3,
                     record=True).episodes
    vault = tmp_path / "vaults" / "tiny-2ag.vlt"
    _odis_as_vault(source, vault)
    result = runner.invoke(app, ["data", "import", "og-marl", str(vault), "--task",
                                 "rware-tiny-2ag", "--uid", "Good", "--data-dir",
                                 str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    run = tmp_path / "data" / "og-marl" / "rware-tiny-2ag" / "good" / "tiny-2ag.vlt-Good"
    got = load_episodes(run, last=None)
    np.testing.assert_array_equal(got.lengths, source.lengths)
    rows = (np.arange(501)[None] < (source.lengths - 1)[:, None])
    for key in ("obs", "state", "actions", "avail_actions", "reward"):
        np.testing.assert_array_equal(getattr(got, key)[rows], getattr(source, key)[rows])
    m = json.loads((run / "manifest.json").read_text())
    assert m["backend"] == "rware" and m["win_rate"] is None and "win_rate_source" not in m
    obs = source.obs[rows].reshape(-1, source.obs.shape[-1])
    np.testing.assert_allclose(m["standardisation"]["obs_mean"], obs.mean(0), rtol=1e-5,
                               atol=1e-6)
