"""ODIS HDF5 format: the real public samples, round trips, checksums, collection."""

import json

import numpy as np
import pytest
import torch
from conftest import odis_runs

from marlbench.data.collect import collect_scripted
from marlbench.data.dataset import TaskData, load_episodes
from marlbench.data.format import DatasetError, read_part


def test_real_odis_3m_medium_statistics(odis_3m):
    eps = load_episodes(odis_3m)
    assert eps.n_episodes == 2000
    assert eps.obs.shape == (2000, 61, 3, 30)
    assert eps.returns.mean() == pytest.approx(14.0, abs=0.01)
    assert eps.lengths.mean() == pytest.approx(26.2, abs=0.05)
    # pymarl conventions: terminated on the last transition, T + 1 filled rows
    last_filled = eps.lengths - 1
    term_row = eps.terminated.argmax(1)
    np.testing.assert_array_equal(term_row, last_filled - 1)


def test_every_odis_sample_reads():
    runs = odis_runs()
    if not runs:
        pytest.skip("ODIS samples not present")
    for run in runs:
        eps = load_episodes(run)
        assert eps.n_episodes == 2000
        assert (eps.terminated.sum(1) == 1).all(), run


def test_last_n_rule_keeps_the_tail(odis_3m):
    full = load_episodes(odis_3m, last=None)
    tail = load_episodes(odis_3m, last=500)
    np.testing.assert_array_equal(tail.actions, full.actions[-500:])


def test_batch_mask_excludes_post_terminal_row(odis_3m):
    data = TaskData(load_episodes(odis_3m, last=64))
    b = data.sample(8, np.random.default_rng(0))
    assert b.obs.shape[1] == int(b.filled.sum(1).max())
    torch.testing.assert_close(b.mask.sum(1), b.filled.sum(1) - 1)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "3m"
    manifest = collect_scripted("3m", "scripted", 40, 0, out)
    return out, manifest


def test_collected_data_matches_odis_conventions(collected):
    out, manifest = collected
    eps = read_part(out / "part_0.h5")
    assert eps.obs.shape == (40, 61, 3, 30)
    assert (eps.terminated.sum(1) == 1).all()
    np.testing.assert_array_equal(eps.terminated.argmax(1), eps.lengths - 2)
    assert manifest["episodes"] == 40
    assert manifest["mean_return"] == pytest.approx(float(eps.returns.mean()), rel=1e-5)
    assert 0 < manifest["win_rate"] < 1
    assert manifest["behaviour_policy"]["name"] == "focus_fire"
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["parts"][0]["file"] == "part_0.h5"


def test_flipped_byte_is_detected(collected, tmp_path):
    out, _ = collected
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in out.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / "part_0.h5").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "part_0.h5").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256"):
        load_episodes(copy)


def test_missing_part_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no part_"):
        load_episodes(tmp_path)


@pytest.mark.parametrize("extra", [0, 37])
def test_loading_the_last_n_reads_only_the_parts_that_hold_them(odis_3m, tmp_path, extra):
    """Three parts (the real file, three times); the last N span the last part and ``extra``
    rows of the one before: equal to reading every part and keeping the tail, while the
    first part is never opened for its rows."""
    import shutil
    from pathlib import Path
    from unittest import mock

    from marlbench.data import dataset as ds
    from marlbench.data.format import EpisodeArrays

    src = sorted(Path(odis_3m).glob("part_*.h5"))[0]
    for k in range(3):
        shutil.copy(src, tmp_path / f"part_{k}.h5")
    per = read_part(src).n_episodes
    lazy = ds.LazyEpisodes(tmp_path, per + extra)
    with mock.patch.object(ds, "read_part", wraps=ds.read_part) as spy:
        got = lazy.load()
    read = [Path(c.args[0]).name for c in spy.call_args_list]
    assert read == (["part_1.h5", "part_2.h5"] if extra else ["part_2.h5"])
    full = EpisodeArrays.concat([read_part(tmp_path / f"part_{k}.h5") for k in range(3)])
    want = full.select(slice(3 * per - per - extra, None))
    for key in ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled"):
        np.testing.assert_array_equal(getattr(got, key), getattr(want, key))
