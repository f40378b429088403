"""Malformed-input corpus, dataset side (issue 13): HDF5 parts, manifests, behaviour summaries
and the `data` commands' paths and options. Every case is refused with exit code 2, one line
naming the file, key, field or option, no traceback, and nothing written. No training, no
collection, no environment stepping: tiny files built in tmp_path."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from malformed import assert_refused, invoke, tree

from marlbench.data.format import DatasetError, sha256
from marlbench.errors import FileFormatError

E, T1, N, W, S, A = 2, 4, 2, 3, 4, 3  # episodes, rows, agents, obs width, state width, actions


def arrays(e: int = E, t1: int = T1, n: int = N, o: int = W, s: int = S,
           a: int = A) -> dict[str, np.ndarray]:
    """A valid part's keys as ODIS stores them: 2 transitions + the post-terminal row."""
    filled = np.zeros((e, t1, 1), np.int64)
    filled[:, : min(3, t1)] = 1
    term = np.zeros((e, t1, 1), np.uint8)
    term[:, min(1, t1 - 1)] = 1
    return {
        "obs": np.ones((e, t1, n, o), np.float32),
        "state": np.ones((e, t1, s), np.float32),
        "actions": np.zeros((e, t1, n, 1), np.int64),
        "actions_onehot": np.zeros((e, t1, n, a), np.float32),
        "avail_actions": np.ones((e, t1, n, a), np.int32),
        "reward": np.full((e, t1, 1), 0.5, np.float32),
        "terminated": term,
        "filled": filled,
    }


Edit = Callable[[dict], None]


def write_part(path: Path, edit: Edit | None = None, extra: Callable[[h5py.File], None] | None
               = None, **dims: int) -> Path:
    data = arrays(**dims)
    if edit:
        edit(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            if value is not None:
                f.create_dataset(key, data=value)
        if extra:
            extra(f)
    return path


def drop(key: str) -> Edit:
    return lambda d: d.update({key: None})


def put(key: str, value: Callable[[np.ndarray], np.ndarray]) -> Edit:
    return lambda d: d.update({key: value(d[key])})


def at(key: str, index: tuple, value: float) -> Edit:
    def edit(d: dict) -> None:
        d[key] = d[key].copy()
        d[key][index] = value
    return edit


def run_dir(root: Path) -> Path:
    return root / "run"


# -- HDF5 parts: (id, how the part is broken, words the refusal must name) ---------------------

REQUIRED = ("obs", "state", "actions", "avail_actions", "reward", "terminated", "filled")

PART_CASES: list[tuple[str, dict, tuple[str, ...]]] = [
    *[(f"missing-{k}", {"edit": drop(k)}, ("missing key(s)", k)) for k in REQUIRED],
    ("obs-byte-strings", {"edit": put("obs", lambda x: x.astype("S8"))}, ("'obs'", "dtype")),
    ("state-str", {"edit": drop("state"),
                   "extra_": lambda f: f.create_dataset(
                       "state", data=np.full((E, T1, S), "x", dtype=object),
                       dtype=h5py.string_dtype())}, ("'state'", "dtype")),
    ("actions-float", {"edit": put("actions", lambda x: x.astype(np.float32))},
     ("'actions'", "integers")),
    ("reward-bytes", {"edit": put("reward", lambda x: x.astype("S4"))}, ("'reward'", "dtype")),
    ("filled-complex", {"edit": put("filled", lambda x: x.astype(np.complex64))},
     ("'filled'", "dtype")),
    ("zero-episodes", {"e": 0}, ("'obs'", "no episodes")),
    ("extra-group", {"extra_": lambda f: f.create_group("extra")}, ("unknown group 'extra'",)),
    ("extra-array", {"extra_": lambda f: f.create_dataset("won", data=np.zeros(E))},
     ("unknown array 'won'",)),
    ("obs-is-a-group", {"edit": drop("obs"), "extra_": lambda f: f.create_group("obs")},
     ("'obs'", "is a group")),
    ("obs-3d", {"edit": put("obs", lambda x: x[..., 0])}, ("'obs'", "dimension")),
    ("state-4d", {"edit": put("state", lambda x: x[..., None])}, ("'state'", "dimension")),
    ("reward-no-trailing-axis", {"edit": put("reward", lambda x: x[..., 0])},
     ("'reward'", "dimension")),
    ("state-episodes-differ", {"edit": put("state", lambda x: x[:1])}, ("'state'", "shape")),
    ("actions-agents-differ", {"edit": put("actions", lambda x: x[:, :, :1])},
     ("'actions'", "shape")),
    ("avail-rows-differ", {"edit": put("avail_actions", lambda x: x[:, :-1])},
     ("'avail_actions'", "shape")),
    ("reward-trailing-2", {"edit": put("reward", lambda x: np.repeat(x, 2, -1))},
     ("'reward'", "shape")),
    ("onehot-actions-differ", {"edit": put("actions_onehot", lambda x: x[..., :1])},
     ("'actions_onehot'", "shape")),
    ("zero-obs-width", {"o": 0}, ("'obs'", "obs width")),
    ("one-row", {"t1": 1}, ("'obs'", "rows")),
    ("filled-2", {"edit": at("filled", (0, 0, 0), 2)}, ("'filled'", "0 or 1")),
    ("filled-not-a-prefix", {"edit": at("filled", (0, 0, 0), 0)}, ("'filled'", "first rows")),
    ("terminated-3", {"edit": at("terminated", (1, 1, 0), 3)}, ("'terminated'", "0 or 1")),
    ("avail-2", {"edit": at("avail_actions", (0, 0, 0, 0), 2)}, ("'avail_actions'", "0 or 1")),
    ("action-out-of-range", {"edit": at("actions", (0, 0, 0, 0), A)}, ("'actions'", "actions")),
    ("action-negative", {"edit": at("actions", (1, 0, 1, 0), -1)}, ("'actions'", "-1")),
    ("nan-reward", {"edit": at("reward", (0, 1, 0), np.nan)}, ("'reward'", "NaN")),
    ("inf-obs", {"edit": at("obs", (0, 0, 0, 0), np.inf)}, ("'obs'", "infinity")),
    ("nan-state", {"edit": at("state", (1, 2, 0), np.nan)}, ("'state'", "NaN")),
]


def _build(root: Path, spec: dict) -> Path:
    dims = {k: v for k, v in spec.items() if k in ("e", "t1", "n", "o", "s", "a")}
    return write_part(run_dir(root) / "part_0.h5", spec.get("edit"), spec.get("extra_"), **dims)


def test_a_valid_tiny_part_inspects(tmp_path):
    part = _build(tmp_path, {})
    for target in (part, part.parent):
        result = invoke("data", "inspect", target, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["episodes"] == E


@pytest.mark.parametrize("target", ["file", "folder"])
@pytest.mark.parametrize(("spec", "names"), [pytest.param(s, n, id=i) for i, s, n in PART_CASES])
def test_inspect_refuses_a_malformed_part(tmp_path, spec, names, target):
    part = _build(tmp_path, spec)
    before = tree(tmp_path)
    result = invoke("data", "inspect", part if target == "file" else part.parent)
    assert_refused(result, "part_0.h5", *names)
    assert tree(tmp_path) == before


def _bytes_part(data: bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        p = run_dir(root) / "part_0.h5"
        p.parent.mkdir(parents=True)
        p.write_bytes(data)
        return p
    return make


def _truncated(root: Path) -> Path:
    p = _build(root, {})
    p.write_bytes(p.read_bytes()[:800])
    return p


def _two_parts(**dims: int) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        _build(root, {})
        write_part(run_dir(root) / "part_1.h5", **dims)
        return run_dir(root)
    return make


def _misnamed(root: Path) -> Path:
    _build(root, {})
    write_part(run_dir(root) / "part_x.h5")
    return run_dir(root)


def _part_is_a_dir(root: Path) -> Path:
    (run_dir(root) / "part_0.h5").mkdir(parents=True)
    return run_dir(root)


def _no_parts(root: Path) -> Path:
    (run_dir(root) / "notes.txt").parent.mkdir(parents=True)
    (run_dir(root) / "notes.txt").write_text("hi")
    return run_dir(root)


FILE_CASES = [
    ("truncated-h5", _truncated, ("part_0.h5", "corrupt or truncated")),
    ("not-hdf5", _bytes_part(b"this is not an HDF5 file\n" * 40), ("part_0.h5", "not a readable")),
    ("empty-file", _bytes_part(b""), ("part_0.h5", "not a readable")),
    ("agents-differ", _two_parts(n=3), ("part_1.h5", "part_0.h5", "agents 3 vs 2")),
    ("obs-width-differs", _two_parts(o=5), ("part_1.h5", "part_0.h5", "obs width")),
    ("actions-differ", _two_parts(a=4), ("part_1.h5", "part_0.h5", "actions 4 vs 3")),
    ("rows-differ", _two_parts(t1=6), ("part_1.h5", "part_0.h5", "rows")),
    ("misnamed-part", _misnamed, ("part_x.h5", "part_<N>.h5")),
    ("part-is-a-directory", _part_is_a_dir, ("part_0.h5", "not a regular file")),
    ("folder-without-parts", _no_parts, ("run", "no part_*.h5")),
]


@pytest.mark.parametrize(("make", "names"), [pytest.param(m, n, id=i) for i, m, n in FILE_CASES])
def test_inspect_refuses_an_unreadable_part_or_run(tmp_path, make, names):
    target = make(tmp_path)
    before = tree(tmp_path)
    assert_refused(invoke("data", "inspect", target), *names)
    assert tree(tmp_path) == before


def test_inspect_json_mode_refuses_too(tmp_path):
    part = _build(tmp_path, {"e": 0})
    result = invoke("data", "inspect", part, "--json")
    line = assert_refused(result, "part_0.h5", "no episodes")
    assert line.strip().startswith('"error"')


def test_inspect_a_missing_path(tmp_path):
    assert_refused(invoke("data", "inspect", tmp_path / "nope.h5"), "nope.h5", "does not exist")


# -- manifests ----------------------------------------------------------------------------


def dataset(root: Path) -> Path:
    """A valid dataset folder <root>/smax/3m/expert/ds with one part and its manifest."""
    run = root / "smax" / "3m" / "expert" / "ds"
    part = write_part(run / "part_0.h5")
    manifest = {
        "task": "3m", "backend": "smax", "quality": "expert",
        "behaviour_policy": {"name": "mappo", "checkpoint": "steps_0.pt"},
        "collection_seed": 0, "format": "odis-hdf5", "episodes": E, "mean_return": 1.0,
        "return_std": 0.0, "win_rate": 0.5,
        "episode_length": {"mean": 3.0, "min": 3, "max": 3, "unit": "filled rows"},
        "parts": [{"file": "part_0.h5", "episodes": E, "sha256": sha256(part)}],
        "marlbench_version": "0.1.0", "wall_time_s": 0.1, "created_at": "2026-01-01T00:00:00",
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return run


def _edit(fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        m = json.loads((run / "manifest.json").read_text())
        fn(m)
        (run / "manifest.json").write_text(json.dumps(m))
    return apply


def _text(data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / "manifest.json").write_bytes(data)


def _cut(run: Path) -> None:
    text = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(text[: len(text) // 2])


def _manifest_dir(run: Path) -> None:
    (run / "manifest.json").unlink()
    (run / "manifest.json").mkdir()


def _part(field: str, value: object) -> Callable[[Path], None]:
    return _edit(lambda m: m["parts"][0].update({field: value}))


def _set(field: str, value: object) -> Callable[[Path], None]:
    return _edit(lambda m: m.update({field: value}))


def _pop(field: str) -> Callable[[Path], None]:
    return _edit(lambda m: m.pop(field))


# Schema and readability cases: refused by `data list` and `data inspect` alike.
SCHEMA_CASES = [
    ("truncated", _cut, ("manifest.json", "not valid JSON")),
    ("not-json", _text(b"hello, manifest"), ("manifest.json", "not valid JSON")),
    ("empty", _text(b""), ("manifest.json", "not valid JSON")),
    ("non-utf8", _text(b'{"task": "\xff\xfe"}'), ("manifest.json", "UTF-8")),
    ("nan-literal", _text(b'{"mean_return": NaN}'), ("manifest.json", "NaN")),
    ("a-list", _text(b"[1, 2]"), ("manifest.json", "dataset manifest", "top level")),
    ("is-a-directory", _manifest_dir, ("manifest.json", "is a directory")),
    ("missing-parts", _pop("parts"), ("manifest.json", "parts", "missing")),
    ("parts-empty", _set("parts", []), ("manifest.json", "parts")),
    ("parts-not-a-list", _set("parts", {"file": "part_0.h5"}), ("manifest.json", "parts")),
    ("part-without-sha256", _edit(lambda m: m["parts"][0].pop("sha256")),
     ("manifest.json", "parts.0.sha256", "missing")),
    ("bad-sha256", _part("sha256", "abc123"), ("manifest.json", "parts.0.sha256")),
    ("part-name-dotdot", _part("file", "../part_0.h5"), ("manifest.json", "parts.0.file")),
    ("part-name-absolute", _part("file", "/etc/passwd"), ("manifest.json", "parts.0.file")),
    ("part-name-not-h5", _part("file", "manifest.json"), ("manifest.json", "parts.0.file")),
    ("part-episodes-0", _part("episodes", 0), ("manifest.json", "parts.0.episodes")),
    ("part-listed-twice", _edit(lambda m: m["parts"].append(dict(m["parts"][0]))),
     ("manifest.json", "twice")),
    ("parts-do-not-add-up", _part("episodes", E + 1), ("manifest.json", f"{E + 1} episodes")),
    ("win-rate-1.5", _set("win_rate", 1.5), ("manifest.json", "win_rate")),
    ("win-rate-negative", _set("win_rate", -0.1), ("manifest.json", "win_rate")),
    ("episodes-0", _set("episodes", 0), ("manifest.json", "episodes")),
    ("episodes-string", _set("episodes", "2"), ("manifest.json", "episodes")),
    ("mean-return-string", _set("mean_return", "high"), ("manifest.json", "mean_return")),
    ("mean-return-bool", _set("mean_return", True), ("manifest.json", "mean_return")),
    ("format-other", _set("format", "d4rl"), ("manifest.json", "format")),
    ("unknown-field", _set("colour", "blue"), ("manifest.json", "colour", "unknown field")),
    ("no-episode-length", _pop("episode_length"), ("manifest.json", "episode_length")),
    ("length-min-above-max", _edit(lambda m: m["episode_length"].update(min=9)),
     ("manifest.json", "episode_length")),
    ("seed-negative", _set("collection_seed", -1), ("manifest.json", "collection_seed")),
    ("behaviour-policy-missing", _pop("behaviour_policy"), ("manifest.json", "behaviour_policy")),
]

# Cases only a checksum check sees: refused by `data inspect` (and before training).
CHECKSUM_CASES = [
    ("checksum-mismatch", _part("sha256", "0" * 64), ("part_0.h5", "sha256")),
    ("part-file-missing", _edit(lambda m: m["parts"].append(
        {"file": "part_1.h5", "sha256": "0" * 64}) or m["parts"][0].pop("episodes")),
     ("part_1.h5", "missing")),
    ("part-not-listed", lambda run: write_part(run / "part_1.h5"), ("part_1.h5", "not listed")),
    ("part-bytes-changed", lambda run: (run / "part_0.h5").write_bytes(
        (run / "part_0.h5").read_bytes()[:-1] + b"\x01"), ("part_0.h5", "sha256")),
]


def test_the_valid_manifest_passes(tmp_path):
    run = dataset(tmp_path)
    assert invoke("data", "inspect", run).exit_code == 0
    result = invoke("data", "list", "--data-dir", tmp_path)
    assert result.exit_code == 0 and "invalid" not in result.output, result.output


@pytest.mark.parametrize(("breaks", "names"),
                         [pytest.param(b, n, id=i) for i, b, n in SCHEMA_CASES + CHECKSUM_CASES])
def test_inspect_refuses_a_malformed_manifest(tmp_path, breaks, names):
    run = dataset(tmp_path)
    breaks(run)
    before = tree(tmp_path)
    assert_refused(invoke("data", "inspect", run), *names)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(("breaks", "names"),
                         [pytest.param(b, n, id=i) for i, b, n in SCHEMA_CASES])
def test_list_marks_a_malformed_manifest_invalid(tmp_path, breaks, names):
    good = dataset(tmp_path / "other")
    run = dataset(tmp_path)
    breaks(run)
    (tmp_path / "smax" / "3m" / "medium").mkdir()  # ... among other folders
    good.rename(tmp_path / "smax" / "3m" / "expert" / "good")
    before = tree(tmp_path)
    result = invoke("data", "list", "--data-dir", tmp_path, env={"COLUMNS": "200"})
    assert_refused(result, *names)
    assert "invalid manifest" in result.output and "mappo" in result.output  # the good row
    assert tree(tmp_path) == before


def test_training_refuses_a_malformed_manifest_with_the_field_named(tmp_path):
    from marlbench.data.dataset import load_task_data

    run = dataset(tmp_path)
    _edit(lambda m: m["parts"][0].pop("sha256"))(run)
    with pytest.raises(FileFormatError, match=r"manifest.json: .*parts\.0\.sha256: missing"):
        load_task_data([(run, 100)])


def test_streaming_reader_checks_what_it_reads(tmp_path):
    """A batch read from disk is checked as it is read (NaN obs here)."""
    from marlbench.data.dataset import LazyEpisodes, TaskData

    write_part(run_dir(tmp_path) / "part_0.h5", at("obs", (slice(None), 0, 0, 0), np.nan))
    data = TaskData(LazyEpisodes(run_dir(tmp_path)))
    with pytest.raises(DatasetError, match=r"part_0.h5: key 'obs' holds NaN"):
        data.sample(2, np.random.default_rng(0))


# -- the behaviour summary.json ---------------------------------------------------------------


def summary() -> dict:
    point = {"checkpoint": "steps_100.pt", "env_steps": 100, "eval_win_rate": 0.5}
    return {
        "task": "3m", "backend": "smax", "algorithm": "mappo", "config": {"lr": 0.001},
        "settings": {"batch_episodes": 8, "env_steps": 100}, "seed": 0, "env_steps": 100,
        "iterations": 2,
        "evals": [{"env_steps": 100, "iteration": 2, "checkpoint": "steps_100.pt",
                   "win_rate": 0.5, "mean_return": 3.0, "episodes": 8}],
        "expert": point, "medium": {**point, "threshold": 0.25},
        "replay": {"windows": [{"file": "window_0.h5", "episodes": 16, "until_env_steps": 100}],
                   "episodes": 16},
        "warnings": [], "wall_time_s": 1.0, "resumed_at_env_steps": None,
    }


SUMMARY_CASES = [
    ("truncated", lambda s: json.dumps(s)[:40], "not valid JSON"),
    ("a-list", lambda s: "[]", "top level"),
    ("no-replay", lambda s: s.pop("replay") and s, "replay"),
    ("win-rate-1.5", lambda s: s["expert"].update(eval_win_rate=1.5) or s, "expert.eval_win_rate"),
    ("checkpoint-path", lambda s: s["medium"].update(checkpoint="../../x.pt") or s,
     "medium.checkpoint"),
    ("window-path", lambda s: s["replay"]["windows"][0].update(file="/etc/x.h5") or s,
     "replay.windows.0.file"),
    ("replay-does-not-add-up", lambda s: s["replay"].update(episodes=3) or s, "replay"),
    ("batch-episodes-0", lambda s: s["settings"].update(batch_episodes=0) or s,
     "settings.batch_episodes"),
]


def test_a_valid_summary_reads(tmp_path):
    from marlbench.data.protocol import read_summary

    (tmp_path / "summary.json").write_text(json.dumps(summary()))
    assert read_summary(tmp_path)["task"] == "3m"


@pytest.mark.parametrize(("breaks", "field"), [pytest.param(b, f, id=i)
                                               for i, b, f in SUMMARY_CASES])
def test_a_malformed_behaviour_summary_names_the_file_and_field(tmp_path, breaks, field):
    from marlbench.data.protocol import make_quality

    out = breaks(summary())
    (tmp_path / "summary.json").write_text(out if isinstance(out, str) else json.dumps(out))
    with pytest.raises(FileFormatError) as info:
        make_quality("medium-replay", tmp_path, 8, 0, tmp_path / "out")
    msg = str(info.value)
    assert "summary.json" in msg and field in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


# -- the `data` commands: paths and options -----------------------------------------------


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """Run in tmp_path, so that anything a command wrote would show in tree(tmp_path)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _odis_source(root: Path, task: str = "3m", quality: str = "medium",
                 edit: Edit | None = None) -> Path:
    write_part(root / "src" / task / quality / "qmix_run" / "part_0.h5", edit)
    return root / "src"


def _afile(root: Path) -> Path:
    (root / "afile").write_text("not a directory")
    return root / "afile"


COLLECT = ("data", "collect", "--task-set", "marine_easy", "--quality", "expert", "--profile",
           "quick", "--dry-run")

CLI_CASES: list[tuple[str, Callable[[Path], list], tuple[str, ...]]] = [
    ("list-data-dir-is-a-file", lambda r: ["data", "list", "--data-dir", _afile(r)],
     ("--data-dir", "afile", "is a file")),
    ("collect-data-dir-is-a-file", lambda r: [*COLLECT, "--data-dir", _afile(r)],
     ("--data-dir", "afile", "is a file")),
    ("import-odis-data-dir-is-a-file",
     lambda r: ["data", "import", "odis", _odis_source(r), "--data-dir", _afile(r)],
     ("--data-dir", "afile", "is a file")),
    ("import-og-marl-data-dir-is-a-file",
     lambda r: ["data", "import", "og-marl", r, "--task", "3m", "--data-dir", _afile(r)],
     ("--data-dir", "afile", "is a file")),
    ("collect-quality-nosuch",
     lambda r: ["data", "collect", "--task-set", "marine_easy", "--quality", "nosuch",
                "--data-dir", r / "d"], ("--quality", "'nosuch'", "expert, medium")),
    ("collect-suite-quality-nosuch",
     lambda r: ["data", "collect", Path(__file__).parents[1] / "suites" / "smoke.yaml",
                "--quality", "nosuch", "--data-dir", r / "d", "--dry-run"],
     ("--quality", "'nosuch'", "expert")),
    ("collect-task-set-nosuch",
     lambda r: ["data", "collect", "--task-set", "nosuch", "--quality", "expert",
                "--data-dir", r / "d"], ("--task-set", "'nosuch'", "marine_easy")),
    ("collect-profile-nosuch", lambda r: [*COLLECT[:-2], "huge", "--dry-run", "--data-dir",
                                          r / "d"], ("--profile", "'huge'", "quick")),
    ("collect-workers-negative", lambda r: [*COLLECT, "--workers", "-1", "--data-dir", r / "d"],
     ("--workers",)),
    ("collect-nothing", lambda r: ["data", "collect", "--data-dir", r / "d"],
     ("--task-set and --quality",)),
    ("inspect-nonexistent", lambda r: ["data", "inspect", r / "nope"], ("nope",
                                                                       "does not exist")),
    ("import-odis-nonexistent",
     lambda r: ["data", "import", "odis", r / "nope", "--data-dir", r / "d"],
     ("nope", "does not exist")),
    ("import-odis-empty-folder",
     lambda r: ["data", "import", "odis", (r / "empty").mkdir() or r / "empty", "--data-dir",
                r / "d"], ("empty", "no ODIS part_*.h5")),
    ("import-odis-not-a-part-file",
     lambda r: ["data", "import", "odis", _afile(r), "--data-dir", r / "d"],
     ("afile", "not an ODIS part file")),
    ("import-odis-unknown-map",
     lambda r: ["data", "import", "odis", _odis_source(r, task="nomap"), "--data-dir", r / "d"],
     ("nomap", "<map>/<quality>/<run>")),
    ("import-odis-unsafe-quality",
     lambda r: ["data", "import", "odis", _odis_source(r, quality="-rf"), "--data-dir", r / "d"],
     ("quality folder", "'-rf'")),
    ("import-odis-malformed-part",
     lambda r: ["data", "import", "odis", _odis_source(r, edit=drop("reward")),
                "--data-dir", r / "d"], ("part_0.h5", "missing key(s) reward")),
    ("import-odis-nan-reward",
     lambda r: ["data", "import", "odis", _odis_source(r, edit=at("reward", (0, 0, 0), np.nan)),
                "--data-dir", r / "d"], ("part_0.h5", "'reward'", "NaN")),
    ("import-odis-wrong-widths-for-the-map",
     lambda r: ["data", "import", "odis", _odis_source(r), "--data-dir", r / "d"],
     ("qmix_run", "does not fit task 3m", "agents 2")),
    ("import-og-marl-nonexistent",
     lambda r: ["data", "import", "og-marl", r / "nope.vlt", "--task", "3m", "--data-dir",
                r / "d"], ("vault folder", "nope.vlt", "does not exist")),
    ("import-og-marl-a-file",
     lambda r: ["data", "import", "og-marl", _afile(r), "--task", "3m", "--data-dir", r / "d"],
     ("vault folder", "afile", "is a file")),
    ("import-og-marl-unknown-task",
     lambda r: ["data", "import", "og-marl", r, "--task", "nomap", "--data-dir", r / "d"],
     ("--task", "unknown map 'nomap'")),
    ("import-og-marl-task-path",
     lambda r: ["data", "import", "og-marl", r, "--task", "../3m", "--data-dir", r / "d"],
     ("--task", "'../3m'", "file name")),
    ("import-og-marl-quality-path",
     lambda r: ["data", "import", "og-marl", r, "--task", "3m", "--quality", "../../x",
                "--data-dir", r / "d"], ("--quality", "'../../x'", "file name")),
    ("import-og-marl-uid-path",
     lambda r: ["data", "import", "og-marl", r, "--task", "3m", "--uid", "a/b",
                "--data-dir", r / "d"], ("--uid", "'a/b'", "file name")),
    ("import-og-marl-not-a-vault",
     lambda r: ["data", "import", "og-marl", (r / "x.vlt").mkdir() or r / "x.vlt", "--task",
                "3m", "--data-dir", r / "d"], ("x.vlt", "cannot read it as an OG-MARL vault")),
]


@pytest.mark.parametrize(("args", "names"), [pytest.param(a, n, id=i) for i, a, n in CLI_CASES])
def test_data_commands_refuse_bad_paths_and_options(cwd, args, names):
    argv = args(cwd)
    before = tree(cwd)
    assert_refused(invoke(*argv), *names)
    assert tree(cwd) == before


def test_og_marl_without_flashbax_is_one_sentence(cwd, monkeypatch):
    monkeypatch.setitem(sys.modules, "flashbax.vault", None)
    (cwd / "v.vlt").mkdir()
    before = tree(cwd)
    result = invoke("data", "import", "og-marl", cwd / "v.vlt", "--task", "3m", "--data-dir",
                    cwd / "d")
    assert_refused(result, "needs flashbax", "pip install")
    assert tree(cwd) == before


def _vault(**changes: object) -> Callable[..., dict]:
    def exp(path: Path, uid: str | None) -> dict:
        t, n = 6, 3
        term = np.zeros((1, t, n), bool)
        term[0, 2] = term[0, 5] = True
        out = {"observations": np.zeros((1, t, n, 30), np.float32),
               "actions": np.zeros((1, t, n), np.int64),
               "rewards": np.zeros((1, t, n), np.float32), "terminals": term,
               "truncations": np.zeros((1, t, n), bool),
               "infos": {"legals": np.ones((1, t, n, 9), bool),
                         "state": np.zeros((1, t, 48), np.float32)}}
        for key, value in changes.items():
            if key.startswith("infos."):
                out["infos"][key[6:]] = value
            else:
                out[key] = value
        return out
    return exp


VAULT_CASES = [
    ("nan-reward", {"rewards": np.full((1, 6, 3), np.nan, np.float32)}, ("rewards", "NaN")),
    ("inf-observation", {"observations": np.full((1, 6, 3, 30), np.inf, np.float32)},
     ("observations", "infinity")),
    ("agents-differ", {"observations": np.zeros((1, 6, 4, 30), np.float32)}, ("3 agents",)),
    ("action-out-of-range", {"actions": np.full((1, 6, 3), 9)}, ("actions", "9 actions")),
    ("flat-observations", {"observations": np.zeros(6, np.float32)},
     ("vault observations", "3 agents")),
    ("missing-key", {"infos.state": None}, ("infos.state",)),
]


@pytest.mark.parametrize(("changes", "names"), [pytest.param(c, n, id=i)
                                                for i, c, n in VAULT_CASES])
def test_og_marl_import_refuses_a_malformed_vault(cwd, monkeypatch, changes, names):
    from marlbench.data import importers

    if "infos.state" in changes:
        real = _vault()
        monkeypatch.setattr(importers, "_vault_experience", lambda p, u: {
            **real(p, u), "infos": {"legals": np.ones((1, 6, 3, 9), bool)}})
    else:
        monkeypatch.setattr(importers, "_vault_experience", _vault(**changes))
    (cwd / "v.vlt").mkdir()
    before = tree(cwd)
    result = invoke("data", "import", "og-marl", cwd / "v.vlt", "--task", "3m", "--data-dir",
                    cwd / "d")
    assert_refused(result, *names)
    assert tree(cwd) == before


def test_a_valid_vault_imports(cwd, monkeypatch):
    from marlbench.data import importers

    monkeypatch.setattr(importers, "_vault_experience", _vault())
    (cwd / "v.vlt").mkdir()
    result = invoke("data", "import", "og-marl", cwd / "v.vlt", "--task", "3m", "--data-dir",
                    cwd / "d")
    assert result.exit_code == 0, result.output
    assert (cwd / "d" / "og-marl" / "3m" / "replay" / "v.vlt" / "manifest.json").exists()
