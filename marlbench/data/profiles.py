"""Built-in data budgets for ``marlbench data collect --task-set S --quality Q --profile P``.

Suites carry the same budgets as profiles of their own (``suites/smac_multitask.yaml``).
"""

from __future__ import annotations

from typing import Any

DATA_PROFILES: dict[str, dict[str, Any]] = {
    # every seen task of the three SMAC sets on a 2-core CPU in well under an hour
    "quick": {
        "episodes": 500,
        "last_episodes": 500,
        "behaviour": {"env_steps": 250_000, "eval_interval": 5_000, "eval_episodes": 128},
    },
    # the ODIS collection budget: 2.05M env steps, 2000 episodes per task and quality
    "paper": {
        "episodes": 2000,
        "last_episodes": 2000,
        "behaviour": {"env_steps": 2_050_000, "eval_interval": 10_000, "eval_episodes": 32},
    },
}
