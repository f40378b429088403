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
