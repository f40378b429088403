"""`marlbench data import alberdice`: pymarl EpisodeBatch folders made from real rware
roll-outs, converted to the ODIS layout and read back equal; malformed folders refused."""

import json

import numpy as np
import pytest
from malformed import assert_refused, invoke, tree

from marlbench.data.collect import read_manifest
from marlbench.data.format import read_part
from marlbench.data.importers import import_alberdice, standardisation
from marlbench.envs.maps import get_map
from marlbench.envs.rware import RwareEnv
from marlbench.rollout import rollout

pytest.importorskip("rware")
TASK = "rware-tiny-2ag"


@pytest.fixture(scope="module")
def episodes():
    env = RwareEnv(get_map(TASK), 3, reward="alberdice")
    rng = np.random.default_rng(0)
    res = rollout(env, lambda r: rng.integers(0, 5, r.avail_actions.shape[:2]), 7, record=True)
    return res.episodes


def _write(folder, eps, extra: int = 1, meta: dict | None = None):
    """The AlberDICE layout: pymarl's trailing axes of 1, a buffer larger than its fill."""
    folder.mkdir(parents=True, exist_ok=True)

    def pad(x):
        return np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)])

    np.save(folder / "obs.npy", pad(eps.obs))
    np.save(folder / "state.npy", pad(eps.state))
    np.save(folder / "actions.npy", pad(eps.actions)[..., None])
    onehot = np.eye(5, dtype=np.float32)[eps.actions]
    np.save(folder / "actions_onehot.npy", pad(onehot))
    np.save(folder / "avail_actions.npy", pad(eps.avail_actions))
    for key in ("reward", "terminated", "filled"):
        np.save(folder / f"{key}.npy", pad(getattr(eps, key))[..., None])
    m = {"buffer_index": eps.n_episodes, "episodes_in_buffer": eps.n_episodes,
         "buffer_size": eps.n_episodes + extra, **(meta or {})}
    (folder / "meta.json").write_text(json.dumps(m))
    return folder


def test_import_reads_back_equal_with_standardisation(tmp_path, episodes):
    src = _write(tmp_path / "rware-tiny-2ag-easy-v4-expert", episodes)
    m = import_alberdice(src, TASK, "expert", tmp_path / "data")
    assert m["status"] == "imported" and m["episodes"] == 3 and m["backend"] == "rware"
    assert m["win_rate"] is None and m["episode_length"]["mean"] == 501
    dest = tmp_path / "data" / "alberdice" / TASK / "expert" / src.name
    back = read_part(dest / "part_0.h5")
    for key in ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled"):
        np.testing.assert_array_equal(getattr(back, key), getattr(episodes, key), err_msg=key)
    assert m["mean_return"] == pytest.approx(float(episodes.returns.mean()), rel=1e-6)
    std = read_manifest(dest)["standardisation"]
    rows = episodes.filled.astype(bool)
    np.testing.assert_allclose(std["obs_mean"], episodes.obs[rows].reshape(-1, 71).mean(0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std["state_std"], episodes.state[rows].std(0), rtol=1e-5,
                               atol=1e-6)
    assert std == standardisation(episodes)
    assert import_alberdice(src, TASK, "expert", tmp_path / "data")["status"] == (
        "already imported")


def _break(folder, how: str):
    if how == "no meta":
        (folder / "meta.json").unlink()
    elif how == "meta overfull":
        m = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps({**m, "episodes_in_buffer": 99}))
    elif how == "meta type":
        (folder / "meta.json").write_text(json.dumps({"buffer_index": 0,
                                                      "episodes_in_buffer": "3",
                                                      "buffer_size": 4}))
    elif how == "no obs":
        (folder / "obs.npy").unlink()
    elif how == "obs width":
        np.save(folder / "obs.npy", np.zeros((4, 501, 2, 70), np.float32))
    elif how == "short":
        np.save(folder / "state.npy", np.zeros((4, 200, 14), np.float32))
    elif how == "nan":
        x = np.load(folder / "reward.npy")
        x[0, 3] = np.nan
        np.save(folder / "reward.npy", x)
    elif how == "actions":
        x = np.load(folder / "actions.npy")
        x[1, 2, 0] = 7
        np.save(folder / "actions.npy", x)
    elif how == "not npy":
        (folder / "filled.npy").write_text("not an array")
    elif how == "pickled":
        np.save(folder / "terminated.npy", np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize("how,names", [
    ("no meta", "no meta.json"), ("meta overfull", "exceeds buffer_size"),
    ("meta type", "episodes_in_buffer"), ("no obs", "no obs.npy"),
    ("obs width", "obs.npy: shape [4, 501, 2, 70]"), ("short", "state.npy: shape"),
    ("nan", "reward.npy: holds NaN"), ("actions", "actions run 0..7"),
    ("not npy", "filled.npy: not a readable"), ("pickled", "terminated.npy: not a readable"),
])
def test_malformed_folders_are_refused(tmp_path, episodes, how, names):
    src = _write(tmp_path / "src", episodes)
    _break(src, how)
    data = tmp_path / "data"
    data.mkdir()
    before = tree(data)
    assert_refused(invoke("data", "import", "alberdice", src, "--task", TASK, "--data-dir",
                          data), names)
    assert tree(data) == before


def test_wrong_task_is_refused(tmp_path, episodes):
    src = _write(tmp_path / "src", episodes)
    assert_refused(invoke("data", "import", "alberdice", src, "--task", "rware-small-4ag",
                          "--data-dir", tmp_path / "data"), "obs.npy: shape")
    assert_refused(invoke("data", "import", "alberdice", src, "--task", "nope",
                          "--data-dir", tmp_path / "data"), "--task")
    assert_refused(invoke("data", "import", "alberdice", src, "--task", TASK, "--quality",
                          "../x", "--data-dir", tmp_path / "data"), "--quality")
