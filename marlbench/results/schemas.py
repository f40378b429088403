"""One schema per results file: ``job.json``, ``status.json``, ``records.json``, plan files,
baselines and published tables. Every reader goes through these (via
:func:`marlbench.fileio.read_validated`), so a truncated, hand-edited or foreign file is named
with its field, never trusted and never a traceback."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from marlbench.fields import FiniteFloat, Probability, Seed

KINDS = ("behaviour", "dataset", "train", "eval")
JOB_ID_PATTERN = r"^(behaviour|dataset|train|eval)-[0-9a-f]{16}$"
JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]
Kind = Literal["behaviour", "dataset", "train", "eval"]
Text = Annotated[str, Field(max_length=100_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Step = Annotated[StrictInt, Field(ge=0, le=10**9)]  # 0: before the first update
Episodes = Annotated[StrictInt, Field(ge=1, le=10**7)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
STATES = ("done", "failed")


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(JOB_ID_PATTERN, value) is not None


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class JobFile(_Schema):
    """``runs/<kind>/<id>/job.json`` (and a data job's): the resolved config it ran."""

    id: JobId
    kind: Kind
    config: dict[str, Any]
    deps: list[JobId]

    @model_validator(mode="after")
    def _id_matches(self) -> JobFile:
        from marlbench.plan import job_id

        if job_id(self.kind, self.config) != self.id:
            raise ValueError("the id does not match the hash of its config: the file was "
                             "edited or belongs to another job")
        if not self.id.startswith(f"{self.kind}-"):
            raise ValueError(f"the id {self.id} is not a {self.kind} job's")
        return self


class StatusFile(_Schema):
    """``status.json``: written last by a job that finished, successfully or not."""

    id: JobId
    kind: Kind
    title: Text
    state: Literal["done", "failed"]
    error: Text | None = None
    wall_time_s: NonNegativeFloat
    log: Text
    torch_threads: Annotated[StrictInt, Field(ge=1, le=4096)] | None = None
    finished_at: Text


class Record(_Schema):
    """One evaluation record: a trained checkpoint's greedy episodes on one test task."""

    suite: Name | None = None
    algorithm: Name
    label: Name
    task_set: Name
    quality: Name
    seed: Seed
    task: Name
    split: Literal["seen", "unseen"]
    step: Step
    win_rate: Probability
    mean_return: FiniteFloat
    return_std: NonNegativeFloat | None = None
    mean_length: NonNegativeFloat | None = None
    dead_allies: NonNegativeFloat | None = None
    dead_enemies: NonNegativeFloat | None = None
    episodes: Episodes
    crashed_episodes: Annotated[StrictInt, Field(ge=0)] | None = None
    wall_time_s: NonNegativeFloat
    backend: Name
    units: Literal["smax", "sc2"] | None = None
    reward: Literal["rware", "alberdice"] | None = None  # the warehouse's reward definition
    action_selection: Literal["greedy", "sampled"] | None = None  # absent: greedy
    standardised: bool | None = None  # observations standardised with the data's statistics
    versions: dict[str, str]
    config_hash: JobId
    job_id: JobId
    finished_at: Text


Records = Annotated[list[Record], Field(min_length=1, max_length=10_000)]


class PlanJob(_Schema):
    kind: Kind
    title: Text
    label: Name | None = None
    task_set: Name | None = None
    quality: Name | None = None
    seed: Seed | None = None
    task: Name | None = None
    step: Step | None = None


class PlanFile(_Schema):
    """``plans/<suite>.json``: the job ids of a suite's latest plan."""

    suite: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")]
    profile: Name | None = None
    checkpoint: Literal["final", "best", "last_k"]
    last_k: Annotated[StrictInt, Field(ge=1, le=1000)]
    task_sets: list[Name] = Field(min_length=1)
    qualities: list[Name] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1)
    labels: list[Name] = Field(min_length=1)
    created: Text
    jobs: dict[JobId, PlanJob]

    @model_validator(mode="after")
    def _kinds_match(self) -> PlanFile:
        for jid, job in self.jobs.items():
            if not jid.startswith(f"{job.kind}-"):
                raise ValueError(f"job {jid} is listed as a {job.kind} job")
        return self


class BaselineCell(_Schema):
    scenario: Name
    label: Name
    mean: FiniteFloat  # a win rate in [0, 100] % (checked by the file), or a return
    std: NonNegativeFloat | None = None
    n_seeds: Annotated[StrictInt, Field(ge=1, le=100_000)]
    se: NonNegativeFloat = 0.0


class BaselineFile(_Schema):
    """A baseline saved by ``marlbench baseline save``: per-cell statistics of the main table."""

    format: Literal["marlbench-baseline/1"]
    suite: Name | None = None
    checkpoint: Literal["final", "best", "last_k"]
    # what the cells measure: win rate (%) of the main table, or average return of the
    # returns-quality table; absent in older baselines (win rate)
    metric: Literal["win_rate", "return"] = "win_rate"
    created: Text = ""
    marlbench: Text = ""
    failed_jobs_at_save: list[Text] = Field(default_factory=list)
    cells: list[BaselineCell] = Field(min_length=1)

    @model_validator(mode="after")
    def _cells_unique(self) -> BaselineFile:
        seen = set()
        for c in self.cells:
            if (c.scenario, c.label) in seen:
                raise ValueError(f"cell ({c.scenario}, {c.label}) appears twice")
            seen.add((c.scenario, c.label))
            if self.metric == "win_rate" and not 0 <= c.mean <= 100:
                raise ValueError(f"cell ({c.scenario}, {c.label}) mean {c.mean} is not a win "
                                 "rate in [0, 100] %")
        return self


class PublishedValue(_Schema):
    mean: FiniteFloat
    std: NonNegativeFloat | None = None


class PublishedTable(_Schema):
    layout: Text = ""
    family: Name | None = None
    note: Text | None = None
    paper_labels: dict[Name, Name] = Field(default_factory=dict)
    cells: dict[Name, dict[Name, FiniteFloat | PublishedValue]] = Field(min_length=1)


class PublishedFile(_Schema):
    """``results/published/<name>.json``: a paper's tables as data."""

    name: Name
    title: Text
    source: Text
    backend: Text
    metric: Text
    aggregation: Text = ""
    tables: dict[Name, PublishedTable] = Field(min_length=1)


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class CalibrationFile(_Schema):
    """A machine's calibration for the cost model (``marlbench calibrate``)."""

    format: Literal["marlbench-calibration/1"]
    source: Text
    machine: dict[str, Any]
    machine_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    threads: Annotated[StrictInt, Field(ge=1, le=4096)]
    maps: list[Name] = Field(min_length=1)
    update_s: dict[Literal["cpu", "cuda"], dict[Name, dict[Name, PositiveFloat]]]
    # one short episode per update (absent in older calibrations: no fixed part then)
    update_small_s: dict[Literal["cpu", "cuda"], dict[Name, dict[Name, PositiveFloat]]] = {}
    eval_step_s: dict[Name, PositiveFloat] = Field(min_length=1)
    eval_length_fraction: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    eval_overhead_s: NonNegativeFloat
    compile_s: NonNegativeFloat
    worker_start_s: NonNegativeFloat
    collect_episode_s: dict[Name, PositiveFloat] = Field(min_length=1)
    # scripted episodes' lengths in rows (absent in older calibrations: then unknown)
    scripted_rows: dict[Name, Annotated[list[Annotated[StrictInt, Field(ge=1, le=100_000)]],
                                        Field(min_length=1, max_length=100_000)]] = {}
    mappo_steps_per_s: dict[Name, PositiveFloat] = Field(min_length=1)
    mappo_eval_chunk_s: dict[Name, PositiveFloat] = {}  # absent in older calibrations
    wall_time_s: NonNegativeFloat

    @model_validator(mode="after")
    def _cpu_figures(self) -> CalibrationFile:
        from marlbench.envs.maps import MAPS

        if "cpu" not in self.update_s or "bc_t" not in self.update_s["cpu"]:
            raise ValueError("update_s must hold CPU figures of bc_t at least")
        named = [m for tables in (self.update_s, self.update_small_s)
                 for table in tables.values() for per in table.values() for m in per]
        named += [*self.eval_step_s, *self.collect_episode_s, *self.mappo_steps_per_s,
                  *self.scripted_rows, *self.mappo_eval_chunk_s]
        unknown = sorted({m for m in named if m not in MAPS})
        if unknown:
            raise ValueError(f"unknown map(s) {', '.join(unknown)}")
        return self
