"""Map registry and layouts against the widths published in protocol.md §2 and SMAC's own
size formulas."""

import textwrap

import pytest
from fake_sc2 import SMAC_REGISTRY, smac_sizes
from typer.testing import CliRunner

from marlbench.envs import is_starcraft, make_env, task_backends
from marlbench.envs.maps import MAPS, get_map
from marlbench.envs.tasksets import SINGLE_TASK_SETS, TASK_SETS, get_task_set

# map: (obs, state, n_actions) from protocol.md §2
PUBLISHED = {
    "3m": (30, 48, 9), "4m": (40, 68, 10), "5m": (50, 90, 11), "6m": (60, 114, 12),
    "7m": (70, 140, 13), "8m": (80, 168, 14), "9m": (90, 198, 15), "10m": (100, 230, 16),
    "11m": (110, 264, 17), "12m": (120, 300, 18), "5m_vs_6m": (55, 98, 12),
    "7m_vs_8m": (75, 150, 14), "8m_vs_9m": (85, 179, 15), "9m_vs_10m": (95, 210, 16),
    "10m_vs_11m": (105, 243, 17), "10m_vs_12m": (110, 256, 18), "13m_vs_15m": (140, 370, 21),
    "1s3z": (64, 92, 10), "2s3z": (80, 120, 11), "3s5z": (128, 216, 14), "4s6z": (160, 290, 16),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_layout_widths_match_published(name):
    lay = get_map(name).layout
    assert (lay.obs_dim, lay.state_dim, lay.n_actions) == PUBLISHED[name]


def test_every_registered_map_has_consistent_counts():
    for spec in MAPS.values():
        assert len(spec.ally_units) == spec.n_agents
        assert len(spec.enemy_units) == spec.n_enemies


def test_task_set_splits_and_order():
    me = get_task_set("marine_easy")
    assert me.seen == ("3m", "5m", "10m")
    assert me.unseen == ("4m", "6m", "7m", "8m", "9m", "11m", "12m")
    assert me.split("4m") == "unseen" and me.split("10m") == "seen"
    mh = get_task_set("marine_hard")
    assert len(mh.test) == 12 and len(mh.unseen) == 9
    assert mh.test[0] == "3m" and mh.test[-1] == "13m_vs_15m"


def test_entity_widths_constant_within_each_set():
    for ts in TASK_SETS.values():
        widths = {(m.layout.enemy_feats, m.layout.ally_feats, m.layout.own_feats)
                  for m in ts.maps()}
        assert len(widths) == 1, ts.name


def test_unknown_names_list_choices():
    with pytest.raises(KeyError, match="marine_easy"):
        get_task_set("marine_medium")
    with pytest.raises(KeyError, match="3m"):
        get_map("2m")


# SMAC's formulas (tests/fake_sc2.py smac_sizes, from oxwhirl/smac starcraft2.py), worked out:
#   6h_vs_8z   (Z vs P: enemy shields)  obs 4 + 8·(4+1+1) + 5·(4+1) + 1 = 78,
#              state 6·4 + 8·(3+1) + 6·14 = 140, actions 6 + 8 = 14
#   2c_vs_64zg (P vs Z: ally shields)   obs 4 + 64·5 + 1·6 + 2 = 332,
#              state 2·(4+1) + 64·3 + 2·70 = 342, actions 70
#   corridor   (P vs Z: ally shields)   obs 4 + 24·5 + 5·6 + 2 = 156,
#              state 6·5 + 24·3 + 6·30 = 282, actions 30
SMAC_WIDTHS = {"6h_vs_8z": (78, 140, 14), "2c_vs_64zg": (332, 342, 70),
               "corridor": (156, 282, 30)}


def test_smac_formula_reproduces_published_widths():
    # the formula itself against widths published elsewhere: protocol.md §2 (3m, 5m_vs_6m,
    # 2s3z, 3s5z) and MMM2's observation 176 with 18 actions (torchrl SMACv2Env docs: T vs
    # T, 10 vs 12, unit_type_bits 3)
    def entry(n, m, race, bits):
        return {"n_agents": n, "n_enemies": m, "a_race": race, "b_race": race,
                "unit_type_bits": bits}

    for name, (n, m, race, bits) in {"3m": (3, 3, "T", 0), "5m_vs_6m": (5, 6, "T", 0),
                                     "2s3z": (5, 5, "P", 2), "3s5z": (8, 8, "P", 2)}.items():
        z = smac_sizes(entry(n, m, race, bits))
        assert (z["obs"], z["state"], z["n_actions"]) == PUBLISHED[name]
    z = smac_sizes(entry(10, 12, "T", 3))
    assert (z["obs"], z["n_actions"]) == (176, 18)


@pytest.mark.parametrize("name", sorted(SMAC_WIDTHS))
def test_mads4_maps_have_smacs_widths(name):
    spec, params = get_map(name), SMAC_REGISTRY[name]
    assert (spec.n_agents, spec.n_enemies, spec.episode_limit, spec.unit_type_bits) == (
        params["n_agents"], params["n_enemies"], params["limit"], params["unit_type_bits"])
    lay, z = spec.layout, smac_sizes(params)
    assert (lay.obs_dim, lay.state_dim, lay.n_actions) == SMAC_WIDTHS[name]
    assert (z["obs"], z["state"], z["n_actions"]) == SMAC_WIDTHS[name]
    assert (lay.move_feats, lay.enemy_feats, lay.ally_feats, lay.own_feats) == (
        z["move"], z["nf_en"], z["nf_al"], z["own"])
    assert (lay.shield_ally, lay.shield_enemy) == (z["shield_ally"], z["shield_enemy"])


def test_shields_are_per_side():
    six_h = get_map("6h_vs_8z").layout
    assert (six_h.shield_ally, six_h.shield_enemy) == (0, 1)
    assert (six_h.enemy_feats, six_h.ally_feats, six_h.own_feats) == (6, 5, 1)
    assert (six_h.ally_state_feats, six_h.enemy_state_feats) == (4, 4)
    for name in ("2c_vs_64zg", "corridor"):
        lay = get_map(name).layout
        assert (lay.shield_ally, lay.shield_enemy) == (1, 0)
        assert (lay.enemy_feats, lay.ally_feats, lay.own_feats) == (5, 6, 2)
    with pytest.raises(ValueError, match="shield_ally or shield_enemy"):
        _ = six_h.shield
    # symmetric maps keep one shared width
    assert get_map("2s3z").layout.shield == 1 and get_map("3m").layout.shield == 0


def test_mads4_single_task_sets_and_backends():
    assert task_backends("6h_vs_8z") == ("smax", "sc2")
    for name in ("2c_vs_64zg", "corridor"):
        assert task_backends(name) == ("sc2",) and is_starcraft(name)
        with pytest.raises(ValueError, match="does not run on backend 'smax'; it runs on: sc2"):
            make_env(name, 1, backend="smax")
    for name, backends in {"6h_vs_8z": ("smax", "sc2"), "2c_vs_64zg": ("sc2",),
                           "corridor": ("sc2",)}.items():
        ts = SINGLE_TASK_SETS[name]
        assert ts.backends == backends and ts.family == "smac_single" and ts.kind == "single"
        assert ts.seen == ts.test == (name,)


SUITE = """\
name: t
backend: {backend}
task_sets: [{task_set}]
qualities: [scripted]
seeds: [1]
algorithms:
  - name: bc_t
training:
  updates: 10
"""


@pytest.mark.parametrize("task_set", ["2c_vs_64zg", "corridor"])
def test_validate_refuses_smax_for_sc2_only_maps(tmp_path, task_set):
    from marlbench.cli.main import app

    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(SUITE.format(backend="smax", task_set=task_set)))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (f"task set '{task_set}' does not run on backend 'smax'; it runs on: sc2"
            in " ".join(result.output.split()))
    path.write_text(textwrap.dedent(SUITE.format(backend="smax", task_set="6h_vs_8z")))
    ok = CliRunner().invoke(app, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output
