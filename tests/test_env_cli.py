"""``marlbench env info`` and ``env bench``."""

import json

import pytest
from typer.testing import CliRunner

from marlbench.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "name,obs,state,actions,agents,limit",
    [("3m", 30, 48, 9, 3, 60), ("2s3z", 80, 120, 11, 5, 120), ("5m_vs_6m", 55, 98, 12, 5, 70)],
)
def test_env_info_json(name, obs, state, actions, agents, limit):
    out = runner.invoke(app, ["env", "info", name, "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert (info["obs_dim"], info["state_dim"], info["n_actions"]) == (obs, state, actions)
    assert (info["n_agents"], info["episode_limit"]) == (agents, limit)


def test_env_info_unknown_map():
    out = runner.invoke(app, ["env", "info", "2m"])
    assert out.exit_code == 2 and "unknown map '2m'" in out.output


def test_env_bench_prints_speed_and_win_rate():
    out = runner.invoke(app, ["env", "bench", "3m", "--episodes", "16", "--policy", "heuristic"])
    assert out.exit_code == 0, out.output
    assert "env-steps/s" in out.output and "win rate" in out.output


def test_doctor_reports_backends_and_reasons():
    out = runner.invoke(app, ["doctor"])
    assert out.exit_code == 0, out.output
    assert "usable backends: smax, grid" in out.output or "usable backends: smax, grid, sc2" \
        in out.output
    assert "StarCraft II binary" in out.output and "SMAC maps of the task sets" in out.output


def test_env_info_sc2_backend_for_starcraft_maps_only():
    out = runner.invoke(app, ["env", "info", "3m", "--backend", "sc2", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["backend"] == "sc2"
    out = runner.invoke(app, ["env", "info", "cn-2", "--backend", "sc2"])
    assert out.exit_code == 2 and "runs on backend(s) grid" in out.output
