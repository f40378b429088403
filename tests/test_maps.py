"""Map registry and layouts against the widths published in protocol.md §2."""

import pytest

from marlbench.envs.maps import MAPS, get_map
from marlbench.envs.tasksets import TASK_SETS, get_task_set

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
