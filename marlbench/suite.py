"""Suite files: YAML validated by pydantic models, with profiles and file:line error messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marlbench.data.qualities import QUALITIES
from marlbench.envs import BACKENDS
from marlbench.envs.tasksets import TASK_SETS
from marlbench.errors import UserError
from marlbench.learners import LEARNERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlgorithmEntry(_Strict):
    """One row of the tables: a learner, its parameters and its display label."""

    name: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in LEARNERS:
            raise ValueError(f"unknown algorithm {v!r}; choose one of: {', '.join(LEARNERS)}")
        return v

    @model_validator(mode="after")
    def _params(self) -> AlgorithmEntry:
        config = LEARNERS[self.name].Config
        unknown = sorted(set(self.params) - set(config.model_fields))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.name}; valid: "
                f"{', '.join(config.model_fields)}"
            )
        config.model_validate(self.params)
        if self.label is None:
            self.label = LEARNERS[self.name].label
        return self


class BehaviourSettings(_Strict):
    """The online behaviour policy trained per seen task to produce the learned qualities.

    Defaults follow the ODIS collection settings (t_max 2.05M env steps, evaluation every 10k
    steps on 32 greedy episodes); the behaviour learner is MAPPO (``marlbench.data.mappo``).
    """

    algorithm: Literal["mappo"] = "mappo"
    env_steps: int = Field(2_050_000, gt=0, description="training budget in environment steps")
    batch_episodes: int = Field(128, gt=0, description="episodes played in parallel per update")
    eval_interval: int = Field(10_000, gt=0, description="evaluate and checkpoint every N steps")
    eval_episodes: int = Field(32, gt=0, description="greedy episodes per evaluation")
    medium_fraction: float = Field(
        0.5, gt=0, le=1, description="medium = first checkpoint reaching this × expert win rate")
    medium_win_rate: float | None = Field(
        None, gt=0, le=1, description="absolute stop win rate instead (ODIS's stop_winrate)")
    params: dict[str, Any] = Field(default_factory=dict, description="MAPPO overrides")

    @field_validator("params")
    @classmethod
    def _known_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        from dataclasses import fields

        from marlbench.data.mappo import MappoConfig

        valid = [f.name for f in fields(MappoConfig)]
        unknown = sorted(set(v) - set(valid))
        if unknown:
            raise ValueError(f"unknown MAPPO parameter(s) {', '.join(unknown)}; valid: "
                             f"{', '.join(valid)}")
        return v


class DataSettings(_Strict):
    """How much offline data each (task, quality) gets, how it is made and how it is loaded."""

    episodes: int = Field(2000, gt=0, description="episodes collected per task and quality")
    last_episodes: int = Field(2000, gt=0, description="the loader keeps the last N episodes")
    seed: int = Field(0, description="collection seed")
    behaviour: BehaviourSettings = Field(default_factory=BehaviourSettings)
    imported: dict[str, str] = Field(
        default_factory=dict,
        description="task set → import source (e.g. odis): read `marlbench data import` data "
        "for its seen tasks instead of collecting",
    )


class TrainingSettings(_Strict):
    updates: int = Field(30000, gt=0, description="optimiser steps")
    batch_episodes: int = Field(32, gt=0, description="episodes of one task per batch")
    lr: float | None = Field(None, gt=0, description="learning-rate override for every algorithm")
    device: str = Field("auto", description="auto (CUDA when present), cpu or cuda")


class EvaluationSettings(_Strict):
    episodes: int = Field(32, gt=0, description="greedy episodes per test task")
    interval: int | None = Field(500, gt=0, description="evaluate every N updates (and at the end)")
    checkpoint: Literal["final", "best", "last_k"] = "final"
    last_k: int = Field(3, gt=0)
    seed: int = 0


class Suite(_Strict):
    name: str
    description: str = ""
    backend: str = "smax"
    task_sets: list[str] = Field(min_length=1)
    qualities: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    algorithms: list[AlgorithmEntry] = Field(min_length=1)
    data: DataSettings = Field(default_factory=DataSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"unknown backend {v!r}; choose one of: {', '.join(BACKENDS)}")
        return v

    @field_validator("task_sets")
    @classmethod
    def _task_sets(cls, v: list[str]) -> list[str]:
        return _check_names(v, TASK_SETS, "task set")

    @field_validator("qualities")
    @classmethod
    def _qualities(cls, v: list[str]) -> list[str]:
        return _check_names(v, QUALITIES, "data quality")

    @model_validator(mode="after")
    def _backend_fits_task_sets(self) -> Suite:
        for name in self.task_sets:
            backends = TASK_SETS[name].backends
            if self.backend not in backends:
                raise ValueError(f"task set {name!r} does not run on backend {self.backend!r}; "
                                 f"it runs on: {', '.join(backends)}")
        for name in self.data.imported:
            if name not in self.task_sets:
                raise ValueError(f"data.imported names task set {name!r}, which the suite does "
                                 f"not run; its task sets: {', '.join(self.task_sets)}")
        collected = [s for s in self.task_sets if s not in self.data.imported]
        for quality in self.qualities if collected else []:
            if self.backend not in QUALITIES[quality].backends:
                fits = [q for q, spec in QUALITIES.items() if self.backend in spec.backends]
                raise ValueError(f"data quality {quality!r} cannot be collected on backend "
                                 f"{self.backend!r}; qualities there: {', '.join(fits) or 'none'}")
        return self

    @model_validator(mode="after")
    def _labels_unique(self) -> Suite:
        labels = [a.label for a in self.algorithms]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"algorithm labels must be unique; repeated: {', '.join(dupes)}")
        return self

    def checkpoint_steps(self) -> list[int]:
        """Updates at which a checkpoint is saved and evaluated (always the final one)."""
        last = self.training.updates
        every = self.evaluation.interval
        steps = set(range(every, last + 1, every)) if every else set()
        return sorted(steps | {last})


def _check_names(values: list[str], registry: dict, what: str) -> list[str]:
    for v in values:
        if v not in registry:
            raise ValueError(f"unknown {what} {v!r}; choose one of: {', '.join(registry)}")
    if len(set(values)) != len(values):
        raise ValueError(f"each {what} may appear once")
    return values


# -- loading with line numbers -------------------------------------------------------------


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict:
    """Map every key path of a YAML document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            out[sub] = key.start_mark.line + 1
            _line_map(value, sub, out)
            out[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _line_for(loc: tuple, lines: dict) -> int:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def load_suite(path: str | Path, profile: str | None = None) -> Suite:
    """Read, merge the profile, and validate a suite file; raise UserError listing problems."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"suite file {path} does not exist")
    text = path.read_text()
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a suite file must be a mapping of fields (name, task_sets, ...)")
    lines = _line_map(node) if node is not None else {}
    data = raw
    if profile is not None:
        profiles = raw.get("profiles") or {}
        if profile not in profiles:
            choices = ", ".join(profiles) or "none defined"
            raise UserError(f"{path}: unknown profile {profile!r}; profiles: {choices}")
        override = profiles[profile] or {}
        if not isinstance(override, dict):
            raise UserError(f"{path}:{_line_for(('profiles', profile), lines)}: profile "
                            f"{profile!r} must be a mapping of fields to override")
        data = _deep_merge(raw, override)
        for loc, line in list(lines.items()):
            if loc[:2] == ("profiles", profile) and len(loc) > 2:
                lines[loc[2:]] = line
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
            field = ".".join(str(x) for x in loc) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown field {loc[-1]!r}"
            problems.append(f"{path}:{_line_for(loc, lines)}: {field}: {msg}")
        raise UserError("\n".join(problems)) from None
    for name, override in suite.profiles.items():
        _validate_profile(path, name, raw, override, lines)
    return suite


def _validate_profile(path: Path, name: str, raw: dict, override: dict, lines: dict) -> None:
    """Profiles are validated as whole suites too, so a typo in an unused one is still found."""
    try:
        Suite.model_validate(_deep_merge(raw, override or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ("profiles", name) + tuple(err["loc"])
        field = ".".join(str(x) for x in loc)
        raise UserError(
            f"{path}:{_line_for(loc, lines)}: {field}: {err['msg'].removeprefix('Value error, ')}"
        ) from None


def resolved_params(suite: Suite, entry: AlgorithmEntry) -> dict[str, Any]:
    """A learner's full configuration: defaults < suite-wide lr override < its own params."""
    params = dict(entry.params)
    if suite.training.lr is not None and "lr" not in params:
        params["lr"] = suite.training.lr
    return LEARNERS[entry.name].Config.model_validate(params).model_dump()
