"""Shared fixtures: where the real ODIS samples live, and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ODIS = ROOT.parent / "shared" / "datasets" / "odis" / "dataset"
ODIS_3M = ODIS / "3m" / "medium" / "qmix_2022-04-03_12-49-45"


def odis_runs() -> list[Path]:
    return sorted(p.parent for p in ODIS.glob("*/*/*/part_0.h5"))


@pytest.fixture
def odis_3m() -> Path:
    if not ODIS_3M.exists():
        pytest.skip(f"ODIS sample data not found at {ODIS_3M}")
    return ODIS_3M


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
