"""The ODIS collection protocol on the embedded backend: behaviour runs, qualities, manifests,
resumption after a kill, never overwriting a dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from marlbench.data.collect import existing_dataset, verify_dataset
from marlbench.data.dataset import load_episodes
from marlbench.data.format import DatasetError
from marlbench.data.protocol import _summarise, make_quality, train_behaviour
from marlbench.envs import make_env
from marlbench.learners.mappo import MappoConfig
from marlbench.rollout import rollout

TINY = {"env_steps": 4000, "batch_episodes": 32, "eval_interval": 1000, "eval_episodes": 32,
        "medium_fraction": 0.5, "medium_win_rate": None, "params": {}}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("beh")
    summary = train_behaviour("3m", "smax", TINY, 0, root / "beh")
    return root, summary


def test_behaviour_run_records_evaluations_and_picks_checkpoints(tiny_run):
    root, s = tiny_run
    steps = [e["env_steps"] for e in s["evals"]]
    assert steps[0] == 0 and steps == sorted(steps) and steps[-1] >= TINY["env_steps"]
    assert s["expert"]["checkpoint"] == s["evals"][-1]["checkpoint"]
    medium = next(e for e in s["evals"] if e["win_rate"] >= s["medium"]["threshold"])
    assert s["medium"]["checkpoint"] == medium["checkpoint"]
    assert s["medium"]["threshold"] == pytest.approx(0.5 * s["evals"][-1]["win_rate"])
    for which in ("expert", "medium"):
        assert (root / "beh" / "checkpoints" / s[which]["checkpoint"]).exists()
    assert s["replay"]["episodes"] == sum(w["episodes"] for w in s["replay"]["windows"]) > 0
    assert all(w["until_env_steps"] <= max(s["medium"]["env_steps"], s["evals"][1]["env_steps"])
               for w in s["replay"]["windows"])


@pytest.mark.parametrize("quality", ["expert", "medium", "medium-replay"])
def test_qualities_are_complete_odis_datasets(tiny_run, quality):
    root, s = tiny_run
    out = root / quality
    m = make_quality(quality, root / "beh", 40, 0, out)
    assert verify_dataset(out) == m
    eps = load_episodes(out, last=None)
    expected = s["replay"]["episodes"] if quality == "medium-replay" else 40
    assert m["episodes"] == eps.n_episodes == expected
    assert eps.obs.shape[1:] == (61, 3, 30)
    assert (eps.terminated.sum(1) == 1).all()
    assert m["mean_return"] == pytest.approx(float(eps.returns.mean()), rel=1e-5)
    bp = m["behaviour_policy"]
    assert bp["name"] == "mappo" and bp["config"] == s["config"]
    if quality != "medium-replay":
        assert bp["checkpoint"] == s[quality]["checkpoint"]
    for key in ("task", "backend", "quality", "episode_length", "parts", "collection_seed",
                "marlbench_version", "win_rate"):
        assert key in m


def test_an_existing_dataset_is_reused_and_a_corrupt_one_never_overwritten(tiny_run):
    root, _ = tiny_run
    out = root / "reuse"
    first = make_quality("expert", root / "beh", 40, 0, out)
    mtime = (out / "part_0.h5").stat().st_mtime_ns
    assert make_quality("expert", root / "beh", 40, 0, out) == first
    assert (out / "part_0.h5").stat().st_mtime_ns == mtime
    data = bytearray((out / "part_0.h5").read_bytes())
    data[len(data) // 3] ^= 0x01
    (out / "part_0.h5").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256"):
        make_quality("expert", root / "beh", 40, 0, out)


def test_an_interrupted_dataset_is_not_complete_and_is_redone(tiny_run):
    root, _ = tiny_run
    out = root / "interrupted"
    out.mkdir()
    (out / "part_0.h5.tmp").write_bytes(b"half a file")
    (out / "part_0.h5").write_bytes(b"a part without a manifest")
    assert existing_dataset(out) is None
    with pytest.raises(DatasetError, match="not a complete dataset"):
        verify_dataset(out)
    m = make_quality("medium", root / "beh", 40, 0, out)
    assert verify_dataset(out) == m and not list(out.glob("*.tmp"))


def _evals(n_wins: list[float]) -> dict:
    evals = [{"env_steps": 1000 * i, "iteration": i, "checkpoint": f"steps_{1000 * i}.pt",
              "win_rate": w, "mean_return": 0.0, "episodes": 32} for i, w in enumerate(n_wins)]
    windows = [{"file": f"window_{i}.h5", "episodes": 10, "until_env_steps": 1000 * (i + 1)}
               for i in range(len(n_wins) - 1)]
    return {"evals": evals, "windows": windows, "env_steps": 1000 * (len(n_wins) - 1),
            "iteration": len(n_wins) - 1}


def test_medium_is_the_first_checkpoint_reaching_the_threshold():
    st = _evals([0.0, 0.1, 0.45, 0.3, 0.6, 0.8])
    s = _summarise("3m", "smax", TINY, 0, MappoConfig(), st)
    assert s["medium"]["threshold"] == pytest.approx(0.4)
    assert s["medium"]["checkpoint"] == "steps_2000.pt"
    assert [w["until_env_steps"] for w in s["replay"]["windows"]] == [1000, 2000]
    absolute = _summarise("3m", "smax", {**TINY, "medium_win_rate": 0.5}, 0, MappoConfig(), st)
    assert absolute["medium"]["checkpoint"] == "steps_4000.pt"
    never = _summarise("3m", "smax", TINY, 0, MappoConfig(), _evals([0.0, 0.0, 0.0]))
    assert never["warnings"] and never["replay"]["windows"]


_KILLABLE = """
import sys
from marlbench.data.protocol import train_behaviour
settings = dict(env_steps=int(sys.argv[2]), batch_episodes=32, eval_interval=500,
                eval_episodes=32, medium_fraction=0.5, medium_win_rate=None, params={})
train_behaviour("3m", "smax", settings, 0, sys.argv[1])
"""


def test_killed_collection_resumes_to_the_same_result(tmp_path):
    """Kill a behaviour run after its first saved state; the rerun continues from it and ends
    exactly where an uninterrupted run ends."""
    steps = 3000
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(killed), str(steps)],
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    deadline = time.time() + 300
    state = killed / "state.pt"
    import torch

    while time.time() < deadline and proc.poll() is None:
        if state.exists():
            try:
                if torch.load(state, weights_only=False)["progress"]["env_steps"] > 0:
                    break
            except Exception:  # being replaced right now
                pass
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists()
    settings = dict(env_steps=steps, batch_episodes=32, eval_interval=500, eval_episodes=32,
                    medium_fraction=0.5, medium_win_rate=None, params={})
    resumed = train_behaviour("3m", "smax", settings, 0, killed)
    assert resumed["resumed_at_env_steps"] > 0
    straight = train_behaviour("3m", "smax", settings, 0, tmp_path / "straight")
    assert [(e["env_steps"], e["win_rate"]) for e in resumed["evals"]] == [
        (e["env_steps"], e["win_rate"]) for e in straight["evals"]]
    assert resumed["replay"] == straight["replay"]
    m = make_quality("medium-replay", killed, 0, 0, tmp_path / "replay")
    assert verify_dataset(tmp_path / "replay") == m


def random_win_rate(task: str, episodes: int = 64, seed: int = 0) -> float:
    env = make_env(task, episodes)
    rng = np.random.default_rng(seed)
    r = rollout(env, lambda res: (rng.random(res.avail_actions.shape)
                                  * res.avail_actions).argmax(-1), seed)
    return float(r.won.mean())


@pytest.mark.slow
@pytest.mark.parametrize("task", ["3m", "5m", "10m"])
def test_marine_easy_expert_beats_medium_beats_random(tmp_path, task):
    """At a small budget, on every Marine-Easy seen task the manifests rank the qualities."""
    settings = {"env_steps": 60_000, "batch_episodes": 64, "eval_interval": 2500,
                "eval_episodes": 64, "medium_fraction": 0.5, "medium_win_rate": None,
                "params": {}}
    train_behaviour(task, "smax", settings, 0, tmp_path / "beh")
    expert = make_quality("expert", tmp_path / "beh", 256, 0, tmp_path / "expert")
    medium = make_quality("medium", tmp_path / "beh", 256, 0, tmp_path / "medium")
    rand = random_win_rate(task)
    assert expert["win_rate"] > medium["win_rate"] > rand, (expert["win_rate"],
                                                            medium["win_rate"], rand)
    assert json.loads((tmp_path / "expert" / "manifest.json").read_text())["win_rate"] == \
        expert["win_rate"]


def test_medium_expert_loads_half_of_each(tiny_run):
    from marlbench.data.dataset import load_task_data

    root, _ = tiny_run
    for q in ("medium", "expert"):
        make_quality(q, root / "beh", 40, 0, root / f"me-{q}")
    data = load_task_data([(root / "me-medium", 20), (root / "me-expert", 20)])
    assert data.n_episodes == 40
    medium = load_episodes(root / "me-medium", last=20)
    np.testing.assert_array_equal(data.lengths[:20], medium.lengths)


def test_replay_log_stops_once_an_evaluation_reaches_the_bound(tiny_run):
    """No later checkpoint can be the medium one, so no later training episode is logged."""
    root, s = tiny_run
    logged = sorted((root / "beh" / "replay").glob("window_*.h5"))
    reached = [e for e in s["evals"][1:] if e["win_rate"] >= TINY["medium_fraction"]]
    if reached:
        assert all(w["until_env_steps"] <= reached[0]["env_steps"]
                   for w in s["replay"]["windows"])
        assert len(logged) == sum(e["env_steps"] <= reached[0]["env_steps"]
                                  for e in s["evals"][1:])
    else:
        assert len(logged) == len(s["evals"]) - 1


def test_run_collects_learned_qualities_then_trains_and_never_recollects(tmp_path):
    """`marlbench run` on a tiny toy suite with medium-expert: behaviour run, medium and expert
    datasets, training on half of each, evaluation; a second run finds everything done."""
    from typer.testing import CliRunner

    from marlbench.cli.main import app

    suite = tmp_path / "toy.yaml"
    suite.write_text(
        "name: toy_me\nbackend: smax\ntask_sets: [toy]\nqualities: [medium-expert]\n"
        "seeds: [1]\nalgorithms: [{name: bc_t}]\n"
        "data: {episodes: 32, last_episodes: 32, behaviour: {env_steps: 2000, batch_episodes: "
        "32, eval_interval: 1000, eval_episodes: 32}}\n"
        "training: {updates: 4, batch_episodes: 8}\nevaluation: {episodes: 8, interval: null}\n")
    args = ["run", str(suite), "--data-dir", str(tmp_path / "data"), "--results",
            str(tmp_path / "results"), "--workers", "0"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "ran 7 job(s)" in first.output  # behaviour, 2 datasets, train, 3 evals
    for q in ("medium", "expert"):
        (ds,) = (tmp_path / "data" / "smax" / "3m" / q).iterdir()
        verify_dataset(ds)
    job = next((tmp_path / "results" / "runs" / "train").glob("*/job.json"))
    sources = json.loads(job.read_text())["config"]["datasets"]["3m"]
    assert [(s["dir"].split("/")[2], s["last"]) for s in sources] == [("medium", 16),
                                                                      ("expert", 16)]
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "ran 0 job(s)" in second.output


def test_behaviour_policy_learns_grid_navigation(tmp_path):
    """The learned qualities also run on the grid backend: MAPPO improves on cn-2."""
    settings = {**TINY, "env_steps": 20_000, "batch_episodes": 64, "eval_interval": 5000,
                "eval_episodes": 64}
    s = train_behaviour("cn-2", "grid", settings, 0, tmp_path / "beh")
    assert s["evals"][-1]["win_rate"] > s["evals"][0]["win_rate"] + 0.2, s["evals"]
    m = make_quality("expert", tmp_path / "beh", 64, 0, tmp_path / "expert")
    assert load_episodes(tmp_path / "expert").obs.shape[1:] == (51, 2, 8)
    assert m["win_rate"] > 0
