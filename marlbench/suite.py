"""Suite files: YAML validated by pydantic models, with profiles and file:line error messages.

Read at the door: UTF-8 only, at most 1 MiB, safe YAML, duplicate keys refused, aliases allowed
but capped (the expanded document may hold at most 100,000 nodes, so an alias bomb is refused
before it is expanded), every number ranged (see :mod:`marlbench.fields`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marlbench.data.qualities import QUALITIES
from marlbench.envs import BACKENDS
from marlbench.envs.tasksets import TASK_SETS
from marlbench.envs.units import DEFAULT_UNITS
from marlbench.errors import UserError
from marlbench.fields import Count, Device, Interval, Rate, Seed
from marlbench.fileio import error_field, error_message, is_safe_name, read_text
from marlbench.learners import LEARNERS, ONLINE_LEARNERS

MAX_SUITE_BYTES = 1 << 20
MAX_YAML_NODES = 100_000  # after expanding aliases
MAX_CHECKPOINTS = 1000  # checkpoints (and so evaluations) per training run
MAX_JOBS = 200_000  # jobs of one plan (the paper suites plan about 21,000)
IMPORT_SOURCES = ("odis", "og-marl", "alberdice")  # `marlbench data import` folders of the data dir


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AlgorithmTraining(_Strict):
    """An algorithm's own budget, overriding the suite's ``training`` and ``evaluation`` (in
    every profile: a profile that cuts budgets lists its algorithms again)."""

    updates: Count | None = Field(None, description="task batches (the references' t_env)")
    batch_episodes: int | None = Field(None, gt=0, le=4096, strict=True,
                                       description="episodes of one task per batch")
    pretrain_updates: Count | None = Field(
        None, description="of ``updates``, the skill pre-training task batches (ODIS)")
    eval_interval: Interval | None = Field(None, description="evaluate every N updates")


class AlgorithmEntry(_Strict):
    """One row of the tables: a learner, its parameters, its display label and, optionally,
    its own training budget."""

    name: str
    label: str | None = Field(None, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f]*$")
    params: dict[str, Any] = Field(default_factory=dict)
    training: AlgorithmTraining = Field(default_factory=AlgorithmTraining)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v in ONLINE_LEARNERS:
            raise ValueError(f"{v} is an online learner (it learns by acting, the offline "
                             "tracks train from datasets); it makes behaviour data as "
                             f"data.behaviour.algorithm; offline algorithms: "
                             f"{', '.join(LEARNERS)}")
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
        try:
            config.model_validate(self.params)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"params.{error_field(err)} of {self.name}: "
                             f"{error_message(err)}") from None
        if self.label is None:
            self.label = LEARNERS[self.name].label
        pre = self.training.pretrain_updates
        if pre is not None:
            if "pretrain_fraction" not in config.model_fields:
                raise ValueError(f"training.pretrain_updates: {self.name} has no pre-training "
                                 "phase")
            if "pretrain_fraction" in self.params:
                raise ValueError("give training.pretrain_updates or params.pretrain_fraction, "
                                 "not both")
        return self


class BehaviourSettings(_Strict):
    """The online behaviour policy trained per seen task to produce the learned qualities.

    Defaults follow the ODIS collection settings (t_max 2.05M env steps, evaluation every 10k
    steps on 32 greedy episodes); the behaviour learner is MAPPO, the registry's online
    learner (``marlbench.learners.mappo``).
    """

    algorithm: Literal["mappo", "planner"] = Field("mappo", description=(
        "mappo (trained online per task), or planner: marlbench's scripted shelf-delivery "
        "planner stands in for MAPPO's expert on the warehouse (rware backend, quality expert "
        "only), where MAPPO cannot learn a map within a quick budget; the manifest says so"))
    env_steps: int = Field(2_050_000, gt=0, le=10**9, strict=True,
                           description="training budget in environment steps")
    batch_episodes: int = Field(128, gt=0, le=4096, strict=True,
                                description="episodes played in parallel per update")
    eval_interval: int = Field(10_000, gt=0, le=10**9, strict=True,
                               description="evaluate and checkpoint every N steps")
    eval_episodes: int = Field(32, gt=0, le=100_000, strict=True,
                               description="greedy episodes per evaluation")
    medium_fraction: float = Field(
        0.5, gt=0, le=1, description="medium = first checkpoint reaching this × expert win rate")
    medium_win_rate: float | None = Field(
        None, gt=0, le=1, description="absolute stop win rate instead (ODIS's stop_winrate)")
    poor_fraction: float = Field(
        0.41, gt=0, le=1, description="poor = first checkpoint reaching this × the final "
        "evaluation on threshold_metric (MADT's good / medium / poor data)")
    threshold_metric: Literal["win_rate", "return"] = Field(
        "win_rate", description="what medium_fraction and poor_fraction are fractions of: the "
        "evaluation win rate (ODIS) or mean return (MADT's qualities; the only one on tasks "
        "without a win, the warehouse)")
    params: dict[str, Any] = Field(default_factory=dict, description="MAPPO overrides")

    @field_validator("params")
    @classmethod
    def _known_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        from dataclasses import fields

        from marlbench.learners.mappo import MappoConfig

        valid = [f.name for f in fields(MappoConfig)]
        unknown = sorted(set(v) - set(valid))
        if unknown:
            raise ValueError(f"unknown MAPPO parameter(s) {', '.join(unknown)}; valid: "
                             f"{', '.join(valid)}")
        try:
            MappoConfig(**v)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"MAPPO parameter {error_field(err)}: {error_message(err)}") from None
        return v

    @model_validator(mode="after")
    def _bounded(self) -> BehaviourSettings:
        evals = self.env_steps // self.eval_interval
        if evals > 10_000:
            raise ValueError(f"env_steps / eval_interval = {evals} behaviour checkpoints; at "
                             "most 10000 are allowed (raise eval_interval)")
        return self


class DataSettings(_Strict):
    """How much offline data each (task, quality) gets, how it is made and how it is loaded."""

    episodes: int = Field(2000, gt=0, le=1_000_000, strict=True,
                          description="episodes collected per task and quality")
    last_episodes: int = Field(2000, gt=0, le=10_000_000, strict=True,
                               description="the loader keeps the last N episodes")
    seed: Seed = Field(0, description="collection seed")
    behaviour: BehaviourSettings = Field(default_factory=BehaviourSettings)
    imported: dict[str, str] = Field(
        default_factory=dict,
        description="task set → import source (e.g. odis): read `marlbench data import` data "
        "for its seen tasks instead of collecting",
    )


class TrainingSettings(_Strict):
    updates: Count = Field(30000, description="optimiser steps")
    standardise: bool = Field(
        False, description="standardise observations and states with the loaded data's own "
        "per-feature mean and std, in training and evaluation (AlberDICE's standardize_obs)")
    batch_episodes: int = Field(32, gt=0, le=4096, strict=True,
                                description="episodes of one task per batch")
    lr: Rate | None = Field(None, description="learning-rate override for every algorithm")
    device: Device = Field("auto", description="auto (CUDA when present), cpu, cuda or cuda:N")


class EvaluationSettings(_Strict):
    episodes: int = Field(32, gt=0, le=100_000, strict=True,
                          description="greedy episodes per test task")
    interval: Interval | None = Field(500, description="evaluate every N updates (and at the end)")
    checkpoint: Literal["final", "best", "last_k"] = "final"
    actions: Literal["greedy", "sampled"] = Field(
        "greedy", description="greedy (the multi-task papers) or sampled from the policy (the "
        "evaluation contract of the published warehouse numbers; learners that can)")
    last_k: int = Field(3, gt=0, le=MAX_CHECKPOINTS, strict=True)
    seed: Seed = 0


ResourceAmount = Annotated[float, Field(gt=0, le=1e6, strict=True)]
RESERVED_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")  # Ray's own names
DEFAULT_TRAIN_GPUS = 0.25  # on a Ray cluster that has GPUs


class JobResources(_Strict):
    """What one job of a kind asks a Ray cluster for (``--executor ray`` only; the local
    executor has ``--workers`` and ``--gpus-per-job``). Never part of a job's id."""

    cpus: float = Field(1.0, gt=0, le=1024, strict=True, description="CPUs per job")
    gpus: float | None = Field(None, ge=0, le=64, strict=True, description=(
        "GPUs per job (fractions share a GPU); default 0, and 0.25 for train jobs when the "
        "cluster has GPUs and training.device is not cpu"))
    custom: dict[str, ResourceAmount] = Field(default_factory=dict, max_length=32, description=(
        "Ray custom resources per job, e.g. {sc2: 1}"))

    @field_validator("custom")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            if not is_safe_name(name) or name in RESERVED_RESOURCES:
                raise ValueError(f"custom resource name {name!r}: use letters, digits, '_', '-' "
                                 f"and '.', and not one of {', '.join(RESERVED_RESOURCES)} (use "
                                 "cpus and gpus)")
        return v


class ResourceSettings(_Strict):
    """Resources per job kind on a Ray cluster. On the ``sc2`` backend every job that plays
    StarCraft II (behaviour, dataset, eval) also asks for one unit of the custom resource
    ``sc2``, so a node started with ``--resources '{"sc2": 4}'`` runs at most 4 games."""

    train: JobResources = Field(default_factory=JobResources)
    eval: JobResources = Field(default_factory=JobResources)
    dataset: JobResources = Field(default_factory=JobResources)
    behaviour: JobResources = Field(default_factory=JobResources)


@dataclass(frozen=True)
class Budget:
    """What one algorithm trains for: task batches, batch size, checkpoints, pre-training."""

    updates: int
    batch_episodes: int
    eval_interval: int | None
    pretrain_updates: int | None = None

    def checkpoint_steps(self) -> list[int]:
        every = self.eval_interval
        steps = set(range(every, self.updates + 1, every)) if every else set()
        return sorted(steps | {self.updates})


class Suite(_Strict):
    name: str = Field(description="the suite's name; also the file name of its plan")
    description: str = Field("", max_length=10_000)
    backend: str = "smax"
    units: Literal["smax", "sc2"] | None = Field(
        None, description="the embedded backend's unit profile: smax (SMAX's own) or sc2 "
        "(StarCraft II's units and rules); default smax; smax backend only")
    reward: Literal["rware", "alberdice"] | None = Field(
        None, description="the warehouse's reward: rware (delivery rewards summed over agents) "
        "or alberdice (agent 0's shaped reward, the published numbers' contract); default "
        "rware; rware backend only")
    task_sets: list[str] = Field(min_length=1)
    qualities: list[str] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1, max_length=1000)
    algorithms: list[AlgorithmEntry] = Field(min_length=1, max_length=200)
    data: DataSettings = Field(default_factory=DataSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not is_safe_name(v):
            raise ValueError(f"{v!r} cannot name a plan file: use letters, digits, '_', '-' and "
                             "'.' (no '/', no '..'), starting with a letter or digit, at most "
                             "100 characters")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, v: list[int]) -> list[int]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"each seed may appear once; repeated: {', '.join(map(str, dupes))}")
        return v

    @field_validator("profiles")
    @classmethod
    def _profile_names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in v:
            if not is_safe_name(name):
                raise ValueError(f"profile name {name!r}: use letters, digits, '_', '-', '.'")
        return v

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

    def env(self) -> dict[str, str]:
        """What names the simulated environment in every job's config: the backend, and on
        the embedded one its unit profile."""
        if self.backend == "rware":
            return {"backend": self.backend, "reward": self.reward or "rware"}
        if self.backend != "smax":
            return {"backend": self.backend}
        return {"backend": self.backend, "units": self.units or DEFAULT_UNITS}

    @model_validator(mode="after")
    def _backend_fits_task_sets(self) -> Suite:
        if self.units is not None and self.backend != "smax":
            raise ValueError(f"units: a unit profile ({self.units!r}) is for the embedded smax "
                             f"backend, not {self.backend!r}")
        for name in self.task_sets:
            backends = TASK_SETS[name].backends
            if self.backend not in backends:
                raise ValueError(f"task set {name!r} does not run on backend {self.backend!r}; "
                                 f"it runs on: {', '.join(backends)}")
        if self.reward is not None and self.backend != "rware":
            raise ValueError(f"reward: a warehouse reward ({self.reward!r}) is for the rware "
                             f"backend, not {self.backend!r}")
        if self.data.behaviour.algorithm == "planner":
            if self.backend != "rware":
                raise ValueError("data.behaviour.algorithm: the shelf-delivery planner drives "
                                 f"warehouse robots (backend rware), not {self.backend!r}")
            learned = [q for q in self.qualities if q != "expert"
                       and QUALITIES[q].producer != "script"]
            if learned:
                raise ValueError("data.behaviour.algorithm: the planner stands in for the expert "
                                 f"only; quality {learned[0]!r} needs a learned behaviour run "
                                 "(algorithm mappo)")
        for name, source in self.data.imported.items():
            if name not in self.task_sets:
                raise ValueError(f"data.imported names task set {name!r}, which the suite does "
                                 f"not run; its task sets: {', '.join(self.task_sets)}")
            if source not in IMPORT_SOURCES:
                raise ValueError(f"data.imported.{name}: unknown import source {source!r}; "
                                 f"choose one of: {', '.join(IMPORT_SOURCES)}")
        collected = [s for s in self.task_sets if s not in self.data.imported]
        for quality in self.qualities if collected else []:
            if self.backend not in QUALITIES[quality].backends:
                fits = [q for q, spec in QUALITIES.items() if self.backend in spec.backends]
                raise ValueError(f"data quality {quality!r} cannot be collected on backend "
                                 f"{self.backend!r}; qualities there: {', '.join(fits) or 'none'}")
        for quality in self.qualities:
            parts = len(QUALITIES[quality].stored)
            if self.data.last_episodes < parts:
                raise ValueError(f"data.last_episodes {self.data.last_episodes} leaves no "
                                 f"episode to each of the {parts} parts of {quality!r}")
        return self

    @model_validator(mode="after")
    def _bounded_checkpoints(self) -> Suite:
        for entry in self.algorithms:
            b = self.budget(entry)
            every = b.eval_interval
            if every is not None and b.updates // every + 1 > MAX_CHECKPOINTS:
                raise ValueError(
                    f"{entry.label}: {b.updates} updates with an evaluation interval of {every} "
                    f"make {b.updates // every} checkpoints; at most {MAX_CHECKPOINTS} are "
                    "allowed per run (raise evaluation.interval or the algorithm's "
                    "training.eval_interval)")
            if b.pretrain_updates is not None and b.pretrain_updates >= b.updates:
                raise ValueError(f"{entry.label}: training.pretrain_updates "
                                 f"{b.pretrain_updates} leaves none of its {b.updates} updates "
                                 "to the policy phase")
        return self

    @model_validator(mode="after")
    def _bounded_plan(self) -> Suite:
        runs = len(self.qualities) * len(self.seeds)
        tests = sum(len(TASK_SETS[s].test) for s in self.task_sets)
        jobs = sum(runs * (len(self.task_sets) + len(self.budget(e).checkpoint_steps()) * tests)
                   for e in self.algorithms)
        if jobs > MAX_JOBS:
            raise ValueError(f"the suite plans about {jobs} jobs; at most {MAX_JOBS} are allowed "
                             "in one plan (split it into several suites, or evaluate less often)")
        return self

    @model_validator(mode="after")
    def _labels_unique(self) -> Suite:
        labels = [a.label for a in self.algorithms]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"algorithm labels must be unique; repeated: {', '.join(dupes)}")
        return self

    def budget(self, entry: AlgorithmEntry) -> Budget:
        """An algorithm's training budget: its own overrides, else the suite's."""
        own = entry.training
        updates = own.updates or self.training.updates
        return Budget(
            updates=updates,
            batch_episodes=own.batch_episodes or self.training.batch_episodes,
            eval_interval=own.eval_interval or self.evaluation.interval,
            pretrain_updates=own.pretrain_updates,
        )

    def checkpoint_steps(self, entry: AlgorithmEntry) -> list[int]:
        """Updates at which a checkpoint is saved and evaluated (always the final one)."""
        return self.budget(entry).checkpoint_steps()


def _check_names(values: list[str], registry: dict, what: str) -> list[str]:
    for v in values:
        if v not in registry:
            raise ValueError(f"unknown {what} {v!r}; choose one of: {', '.join(registry)}")
    dupes = sorted({x for x in values if values.count(x) > 1})
    if dupes:
        raise ValueError(f"each {what} may appear once; repeated: {', '.join(dupes)}")
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


class _SuiteLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (the second would silently
    replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let the constructor say so
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {first})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _expanded_nodes(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded, computed without expanding (shared
    nodes are counted once per use); a recursive alias is refused."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to a node that contains it", node.start_mark)
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(v) for v in node.value)
        else:
            n = 1
        active.discard(key)
        sizes[key] = min(n, MAX_YAML_NODES + 1)
        return sizes[key]

    return size(root)


def read_yaml(path: Path) -> tuple[Any, dict]:
    """The document of a YAML file and the line of every key path; one sentence on bad input."""
    text = read_text(path, "suite file", MAX_SUITE_BYTES)
    try:
        loader = _SuiteLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            if _expanded_nodes(node) > MAX_YAML_NODES:
                raise UserError(f"{path}: the document expands to more than {MAX_YAML_NODES} "
                                "values once its aliases (*name) are resolved; refusing it")
            raw = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise UserError(f"{path}: the YAML is nested too deeply") from None
    return raw, _line_map(node)


def load_suite(path: str | Path, profile: str | None = None, units: str | None = None) -> Suite:
    """Read, merge the profile (and a ``units`` override from the command line), and validate
    a suite file; raise UserError listing problems."""
    path = Path(path)
    raw, lines = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a suite file must be a mapping of fields (name, task_sets, ...)")
    data = raw
    if profile is not None:
        profiles = raw.get("profiles") or {}
        if not isinstance(profiles, dict):
            raise UserError(f"{path}:{_line_for(('profiles',), lines)}: profiles must be a "
                            "mapping of profile names to overrides")
        if profile not in profiles:
            choices = ", ".join(map(str, profiles)) or "none defined"
            raise UserError(f"{path}: unknown profile {profile!r}; profiles: {choices}")
        override = profiles[profile] or {}
        if not isinstance(override, dict):
            raise UserError(f"{path}:{_line_for(('profiles', profile), lines)}: profile "
                            f"{profile!r} must be a mapping of fields to override")
        data = _deep_merge(raw, override)
        for loc, line in list(lines.items()):
            if loc[:2] == ("profiles", profile) and len(loc) > 2:
                lines[loc[2:]] = line
    if units is not None:
        from marlbench.envs.units import UNIT_PROFILES

        if units not in UNIT_PROFILES:
            raise UserError(f"--units: unknown unit profile {units!r}; choose one of: "
                            f"{', '.join(UNIT_PROFILES)}")
        data = {**data, "units": units}
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
            problems.append(f"{path}:{_line_for(loc, lines)}: {error_field(err)}: "
                            f"{_suite_message(err)}")
        raise UserError("\n".join(problems)) from None
    for name, override in suite.profiles.items():
        _validate_profile(path, name, raw, override, lines)
    return suite


def _suite_message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r}"
    return error_message(err)


def _validate_profile(path: Path, name: str, raw: dict, override: dict, lines: dict) -> None:
    """Profiles are validated as whole suites too, so a typo in an unused one is still found."""
    try:
        Suite.model_validate(_deep_merge(raw, override or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ("profiles", name) + tuple(x for x in err["loc"]
                                         if not str(x).startswith("function-"))
        field = ".".join(str(x) for x in loc)
        raise UserError(f"{path}:{_line_for(loc, lines)}: {field}: {_suite_message(err)}") from None


def resolved_params(suite: Suite, entry: AlgorithmEntry) -> dict[str, Any]:
    """A learner's full configuration: defaults < suite-wide lr override < its own params (a
    ``training.pretrain_updates`` becomes the fraction of its updates the learner reads)."""
    params = dict(entry.params)
    if suite.training.lr is not None and "lr" not in params:
        params["lr"] = suite.training.lr
    b = suite.budget(entry)
    if b.pretrain_updates is not None:
        params["pretrain_fraction"] = b.pretrain_updates / b.updates
    return LEARNERS[entry.name].Config.model_validate(params).model_dump()
