"""The malformed-input corpus (issue 13): suites, CLI options, results directories, baselines,
published tables and analysis checkpoints. Every case is refused with exit 2 (1 where a job or
gate fails), one line naming the file or option, no traceback; refusals write nothing.

The dataset surfaces (HDF5 parts, manifests, `marlbench data ...`) are in
test_malformed_data.py. No case trains or steps an environment.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from malformed import assert_refused, invoke, tree
from results_fixture import eval_id, status, write_eval, write_plan
from test_aggregate import _records

from marlbench.errors import UserError
from marlbench.fileio import inside, safe_name

BASE = """\
name: t
backend: smax
task_sets: [marine_easy]
qualities: [scripted]
seeds: [1]
algorithms:
  - name: bc_t
training:
  updates: 10
evaluation:
  interval: 5
profiles:
  quick:
    training: {updates: 5}
"""


def _suite(tmp_path: Path, text: str | bytes, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return path


def _edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_the_base_suite_is_valid(tmp_path):
    result = invoke("validate", _suite(tmp_path, BASE), "--data-dir", tmp_path / "data")
    assert result.exit_code == 0, result.output


# -- suites: edits of a valid file, each naming its field ------------------------------------

SUITE_EDITS = [
    # seeds
    ("seeds: [1]", "seeds: [-1]", "seeds.0"),
    ("seeds: [1]", "seeds: [1e30]", "seeds.0"),
    ("seeds: [1]", "seeds: [4294967296]", "seeds.0"),
    ("seeds: [1]", "seeds: [1, 1]", "repeated: 1"),
    ("seeds: [1]", "seeds: [true]", "seeds.0"),
    ("seeds: [1]", "seeds: ['1']", "seeds.0"),
    ("seeds: [1]", "seeds: [1.5]", "seeds.0"),
    ("seeds: [1]", "seeds: []", "seeds"),
    ("seeds: [1]", "seeds: 1", "seeds"),
    ("seeds: [1]", "seeds: [.nan]", "seeds.0"),
    # the suite name becomes a plan file name
    ("name: t", "name: ../../x", "cannot name a plan file"),
    ("name: t", "name: a/b", "cannot name a plan file"),
    ("name: t", "name: ''", "cannot name a plan file"),
    ("name: t", "name: .hidden", "cannot name a plan file"),
    ("name: t", "name: " + "x" * 101, "cannot name a plan file"),
    ("name: t", "name: a\\\\b", "cannot name a plan file"),
    ("name: t\n", "", "name: missing"),
    ("name: t", "name: [t]", "name"),
    # training
    ("updates: 10", "updates: 0", "training.updates"),
    ("updates: 10", "updates: -5", "training.updates"),
    ("updates: 10", "updates: 1e30", "training.updates"),
    ("updates: 10", "updates: 100000000000", "training.updates"),
    ("updates: 10", "updates: ten", "training.updates"),
    ("updates: 10", "updates: 2.5", "training.updates"),
    ("updates: 10", "updates: true", "training.updates"),
    ("updates: 10", "updates: 10000000", "checkpoints"),  # with interval 5
    ("updates: 10", "updates: 10\n  batch_episodes: 0", "training.batch_episodes"),
    ("updates: 10", "updates: 10\n  batch_episodes: 100000", "training.batch_episodes"),
    ("updates: 10", "updates: 10\n  lr: .nan", "training.lr"),
    ("updates: 10", "updates: 10\n  lr: .inf", "training.lr"),
    ("updates: 10", "updates: 10\n  lr: -1.0", "training.lr"),
    ("updates: 10", "updates: 10\n  lr: fast", "training.lr"),
    ("updates: 10", "updates: 10\n  device: tpu", "training.device"),
    ("updates: 10", "updates: 10\n  device: cuda:x", "training.device"),
    ("updates: 10", "updates: 10\n  device: 3", "training.device"),
    ("updates: 10", "updates: 10\n  epochs: 3", "unknown field 'epochs'"),
    # evaluation
    ("interval: 5", "interval: 0", "evaluation.interval"),
    ("interval: 5", "interval: -1", "evaluation.interval"),
    ("interval: 5", "interval: 5\n  episodes: 0", "evaluation.episodes"),
    ("interval: 5", "interval: 5\n  episodes: 1000000", "evaluation.episodes"),
    ("interval: 5", "interval: 5\n  checkpoint: newest", "evaluation.checkpoint"),
    ("interval: 5", "interval: 5\n  last_k: 0", "evaluation.last_k"),
    ("interval: 5", "interval: 5\n  last_k: -1", "evaluation.last_k"),
    ("interval: 5", "interval: 5\n  seed: -1", "evaluation.seed"),
    # data
    ("training:", "data: {episodes: 0}\ntraining:", "data.episodes"),
    ("training:", "data: {episodes: 100000000}\ntraining:", "data.episodes"),
    ("training:", "data: {last_episodes: 0}\ntraining:", "data.last_episodes"),
    ("training:", "data: {seed: -3}\ntraining:", "data.seed"),
    ("training:", "data: {imported: {marine_easy: nosuch}}\ntraining:", "unknown import source"),
    ("training:", "data: {imported: {marine_easy: ../odis}}\ntraining:", "unknown import source"),
    ("training:", "data: {imported: {marine_hard: odis}}\ntraining:", "does not run"),
    ("training:", "data: {behaviour: {env_steps: 0}}\ntraining:", "data.behaviour.env_steps"),
    ("training:", "data: {behaviour: {eval_interval: 1}}\ntraining:", "behaviour checkpoints"),
    ("training:", "data: {behaviour: {medium_fraction: 2}}\ntraining:",
     "data.behaviour.medium_fraction"),
    ("training:", "data: {behaviour: {params: {lr: fast}}}\ntraining:", "MAPPO parameter lr"),
    ("training:", "data: {behaviour: {params: {hidden: -1}}}\ntraining:",
     "MAPPO parameter hidden"),
    ("training:", "data: {behaviour: {params: {gamma: .nan}}}\ntraining:",
     "MAPPO parameter gamma"),
    ("training:", "data: {behaviour: {params: {hiden: 64}}}\ntraining:", "unknown MAPPO"),
    ("qualities: [scripted]", "qualities: [medium-expert]\ndata: {last_episodes: 1}",
     "leaves no episode"),
    # algorithms and their parameters
    ("  - name: bc_t", "  - name: bc_x", "unknown algorithm 'bc_x'"),
    ("  - name: bc_t", "  - name: bc_t\n    params: {emb: -4}", "params.emb"),
    ("  - name: bc_t", "  - name: bc_t\n    params: {emb: 0}", "params.emb"),
    ("  - name: bc_t", "  - name: bc_t\n    params: {heads: 1.5}", "params.heads"),
    ("  - name: bc_t", "  - name: bc_t\n    params: {lr: abc}", "params.lr"),
    ("  - name: bc_t", "  - name: bc_t\n    params: {lr: .inf}", "params.lr"),
    ("  - name: bc_t", "  - name: updet_m\n    params: {gamma: 1.5}", "params.gamma"),
    ("  - name: bc_t", "  - name: updet_m\n    params: {mixer: qmix}", "params.mixer"),
    ("  - name: bc_t", "  - name: stairs\n    params: {token_dropout: -0.1}",
     "params.token_dropout"),
    ("  - name: bc_t", "  - name: odis\n    params: {pretrain_fraction: 1.5}",
     "params.pretrain_fraction"),
    ("  - name: bc_t", "  - name: hissd\n    params: {target_update_interval: 0}",
     "params.target_update_interval"),
    ("  - name: bc_t", "  - name: bc_t\n    params: {width: 64}", "unknown parameter(s) width"),
    ("  - name: bc_t", "  - name: bc_t\n  - name: bc_t", "labels must be unique"),
    # an algorithm's own budget
    ("  - name: bc_t", "  - name: bc_t\n    training: {updates: 0}", "training.updates"),
    ("  - name: bc_t", "  - name: bc_t\n    training: {batch_episodes: 1.5}",
     "training.batch_episodes"),
    ("  - name: bc_t", "  - name: bc_t\n    training: {eval_interval: -1}",
     "training.eval_interval"),
    ("  - name: bc_t", "  - name: bc_t\n    training: {epochs: 3}", "unknown field 'epochs'"),
    ("  - name: bc_t", "  - name: bc_t\n    training: {pretrain_updates: 5}",
     "bc_t has no pre-training phase"),
    ("  - name: bc_t", "  - name: odis\n    training: {updates: 10, pretrain_updates: 10}",
     "leaves none of its 10 updates"),
    ("  - name: bc_t", "  - name: odis\n    training: {pretrain_updates: 3}\n"
     "    params: {pretrain_fraction: 0.5}", "not both"),
    ("  - name: bc_t", "  - name: bc_t\n    training: {updates: 100000, eval_interval: 1}",
     "at most 1000 are allowed"),
    ("  - name: bc_t", "  - name: bc_t\n    label: ''", "label"),
    ("  - name: bc_t", "  - name: bc_t\n    label: \"a\\nb\"", "label"),
    ("  - name: bc_t", "  - bc_t", "algorithms.0"),
    ("algorithms:\n  - name: bc_t", "algorithms: []", "algorithms"),
    # task sets, qualities, backend, fields
    ("[marine_easy]", "[marine_easy, marine_easy]", "repeated: marine_easy"),
    ("[marine_easy]", "[marine_medium]", "unknown task set"),
    ("[scripted]", "[scripted, scripted]", "repeated: scripted"),
    ("[scripted]", "[experts]", "unknown data quality"),
    ("backend: smax", "backend: sc3", "unknown backend"),
    ("backend: smax", "backend: smax\nbakend: smax", "unknown field 'bakend'"),
    ("backend: smax", "backend: smax\ndescription: [1, 2]", "description"),
    ("backend: smax", "backend: smax\nunits: sc3", "units"),
    ("backend: smax", "backend: smax\nunits: [sc2]", "units"),
    ("backend: smax", "backend: sc2\nunits: sc2", "for the embedded smax backend"),
    # profiles
    ("training: {updates: 5}", "training: {updates: -5}", "profiles.quick.training.updates"),
    ("    training: {updates: 5}", "    [1, 2]", "profiles.quick"),
    ("  quick:\n", "  ../q:\n", "profile name"),
]


@pytest.mark.parametrize("old,new,names", SUITE_EDITS,
                         ids=[f"suite-{i}" for i in range(len(SUITE_EDITS))])
def test_suite_field_errors(tmp_path, old, new, names):
    path = _suite(tmp_path, _edit(old, new))
    before = tree(tmp_path)
    line = assert_refused(invoke("validate", path, "--data-dir", tmp_path / "data"), str(path))
    assert names in line
    assert tree(tmp_path) == before


WHOLE_FILES = [
    (b"\xff\xfe\x00 not utf-8", "not a UTF-8 text file"),
    (b"", "must be a mapping"),
    (b"- a\n- b\n", "must be a mapping"),
    (b"just a string\n", "must be a mapping"),
    (b"name: [unclosed\n", "not valid YAML"),
    (b"name: t\nname: u\n", "appears twice"),
    (BASE.replace("  updates: 10", "  updates: 10\n  updates: 20").encode(), "appears twice"),
    (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
     "aliases"),
    (b"a: &a [*a]\n", "contains it"),
    (b"x: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested too deeply"),
    (b"x: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    (b"name: t\n" + b"# padding\n" * 120_000, "larger than"),
    (b"\tname: t\n", "not valid YAML"),
]


@pytest.mark.parametrize("text,names", WHOLE_FILES,
                         ids=[f"file-{i}" for i in range(len(WHOLE_FILES))])
def test_suite_file_errors(tmp_path, text, names):
    path = _suite(tmp_path, text)
    line = assert_refused(invoke("validate", path), str(path))
    assert names in line


def test_suite_path_is_a_directory_or_missing(tmp_path):
    assert "is a directory" in assert_refused(invoke("validate", tmp_path), str(tmp_path))
    missing = tmp_path / "nope.yaml"
    assert "does not exist" in assert_refused(invoke("run", missing), str(missing))


def test_unknown_profile(tmp_path):
    path = _suite(tmp_path, BASE)
    assert "unknown profile" in assert_refused(invoke("run", path, "-p", "nosuch", "--results",
                                                      tmp_path / "r", "--dry-run"), str(path))


def test_alias_bomb_and_huge_budget_stay_under_a_memory_cap(tmp_path):
    """Run in a subprocess limited to 1 GiB of address space: refused, quickly, no traceback."""
    bomb = _suite(tmp_path, WHOLE_FILES[7][0], "bomb.yaml")
    huge = _suite(tmp_path, _edit("updates: 10", "updates: 10000000"), "huge.yaml")
    no_interval = _suite(tmp_path, _edit("updates: 10", "updates: 100000000000").replace(
        "interval: 5", "interval: null"), "huge2.yaml")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from marlbench.cli.main import main; sys.argv[0] = 'marlbench'; main()")
    for path in (bomb, huge, no_interval):
        r = subprocess.run([sys.executable, "-c", code, "validate", str(path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "Traceback" not in r.stderr and str(path) in r.stderr


# -- names that become paths, and nothing written outside its root ---------------------------


def test_a_suite_named_dotdot_is_refused_and_writes_nothing(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    path = _suite(work, _edit("name: t", "name: ../x"))
    before = tree(tmp_path)
    for args in (["validate", path], ["run", path, "--results", work / "results", "--data-dir",
                                      work / "data", "--workers", "0"]):
        assert "cannot name a plan file" in assert_refused(invoke(*args), str(path))
    assert tree(tmp_path) == before


def test_paths_are_checked_inside_their_root(tmp_path):
    assert inside(tmp_path, tmp_path / "a" / "b.json") == tmp_path / "a" / "b.json"
    for bad in (tmp_path / ".." / "x.json", Path("/etc/passwd"), tmp_path / "a" / ".." / ".."):
        with pytest.raises(UserError, match="outside"):
            inside(tmp_path, bad)
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(UserError, match="outside"):
        inside(tmp_path, tmp_path / "link" / "x")
    for name in ("../x", "a/b", "", ".x", "x" * 101, "a..b", None, 3):
        with pytest.raises(UserError, match="cannot be used as a file name"):
            safe_name(name, "suite name")
    assert safe_name("smac_multitask-v2.1", "suite name") == "smac_multitask-v2.1"


def test_every_file_a_run_writes_lies_under_its_results_or_data_directory(tmp_path, monkeypatch):
    """A whole run (fake job functions, the real planner, executor and store), started from
    tmp_path: nothing appears outside results/ and data/."""
    from marlbench.executors.local import execute
    from marlbench.plan import make_plan
    from marlbench.results.store import Store
    from marlbench.suite import load_suite

    monkeypatch.chdir(tmp_path)
    suite_file = _suite(tmp_path, BASE)
    before = tree(tmp_path)
    suite = load_suite(suite_file)
    plan = make_plan(suite, Path("data"))
    store = Store(Path("results"), Path("data"))
    store.save_plan(plan, None)
    fake = {k: f"fake_jobs:{k}" for k in ("dataset", "train", "eval")}
    summary = execute(plan, store, workers=0, opts={"job_functions": fake, "suite": "t"})
    assert summary.ok and len(summary.done) == len(plan.jobs)
    new = tree(tmp_path) - before
    assert new and all(p.split("/")[0] in ("results", "data") for p in new), sorted(new)[:5]


# -- CLI options: ranges checked before any work --------------------------------------------

OPTION_CASES = [
    (["run", "{suite}", "--workers", "-1"], "--workers"),
    (["run", "{suite}", "--threads", "0"], "--threads"),
    (["run", "{suite}", "--threads", "-1"], "--threads"),
    (["run", "{suite}", "--workers", "two"], "--workers"),
    (["run", "{suite}", "--device", "tpu"], "--device"),
    (["run", "{suite}", "--device", "cuda:x"], "--device"),
    (["run", "{suite}", "--results", "{file}"], "{file}"),
    (["run", "{suite}", "--data-dir", "{file}"], "{file}"),
    (["validate", "{suite}", "--data-dir", "{file}"], "{file}"),
    (["report", "{results}", "--last-k", "0"], "--last-k"),
    (["report", "{results}", "--last-k", "-1"], "--last-k"),
    (["report", "{results}", "--reps", "0"], "--reps"),
    (["report", "{results}", "--boot-seed", "-1"], "--boot-seed"),
    (["report", "{results}", "--format", "docx"], "unknown format"),
    (["report", "{results}", "--table", "nosuch"], "unknown table"),
    (["report", "{results}", "--stat", "mode"], "unknown statistic"),
    (["report", "{results}", "--checkpoint", "newest"], "unknown checkpoint rule"),
    (["report", "{results}", "--screenshot", "{tmp}/x.png"], "--screenshot needs --html"),
    (["report", "{results}", "--html", "{tmp}"], "--html"),
    (["report", "{results}", "--plots", "{file}"], "--plots"),
    (["report", "{results}", "--compare", "nosuch"], "no published numbers named"),
    (["report", "{results}", "--compare", "../baselines/smoke"], "no published numbers named"),
    (["report", "{file}"], "{file}"),
    (["report", "{tmp}/nope"], "does not exist"),
    (["report", "{results}", "--suite", "other"], "no runs of suite"),
    (["check", "{results}", "-b", "{baseline}", "--tolerance", "nan"], "--tolerance"),
    (["check", "{results}", "-b", "{baseline}", "--tolerance", "-1"], "--tolerance"),
    (["check", "{results}", "-b", "{baseline}", "--tolerance", "inf"], "--tolerance"),
    (["check", "{results}", "-b", "{baseline}", "--sigma", "nan"], "--sigma"),
    (["check", "{results}", "-b", "{baseline}", "--sigma", "-2"], "--sigma"),
    (["check", "{results}", "-b", "{tmp}/nope.json"], "does not exist"),
    (["check", "{results}", "-b", "{tmp}"], "is a directory"),
    (["check", "{results}", "-b", "{baseline}", "--junit", "{tmp}"], "--junit"),
    (["check", "{results}", "-b", "{baseline}", "--summary", "{file}/x.md"], "--summary"),
    (["baseline", "save", "{results}", "--to", "{tmp}"], "--to"),
    (["baseline", "save", "{results}", "--to", "{tmp}/b.json", "--last-k", "0"], "--last-k"),
    (["analyze", "dormant", "{tmp}/x.pt", "--task", "3m", "--episodes", "0"], "--episodes"),
    (["analyze", "attention", "{tmp}/x.pt", "--task", "3m", "--agent", "-1"], "--agent"),
    (["env", "bench", "3m", "--episodes", "0"], "--episodes"),
    (["env", "bench", "3m", "--seed", "-1"], "--seed"),
    (["env", "info", "no_such_map"], "no_such_map"),
    (["env", "info", "3m", "--units", "sc3"], "--units"),
    (["env", "bench", "3m", "--units", ""], "--units"),
    (["env", "bench", "rware-tiny-2ag", "--reward", "dense"], "--reward"),
    (["env", "bench", "cn-2", "--policy", "heuristic"], "focus-fire"),
    (["env", "info", "rware-tiny-2ag", "--backend", "smax"], "runs on backend(s) rware"),
    (["env", "fidelity", "rware-tiny-2ag", "--data", "{file}"], "not a StarCraft map"),
    (["run", "{suite}", "--units", "sc3", "--dry-run"], "--units"),
    (["env", "fidelity", "3m", "--data", "{tmp}/nope"], "does not exist"),
    (["env", "fidelity", "3m", "--data", "{file}"], "not a readable HDF5 file"),
    (["env", "fidelity", "3m", "--data", "{file}", "--updates", "-1"], "--updates"),
    (["env", "fidelity", "3m", "--data", "{file}", "--episodes", "0"], "--episodes"),
    (["env", "fidelity", "3m", "--data", "{file}", "--units", ","], "--units"),
    (["env", "fidelity", "3m", "--data", "{file}", "--seed", "-1"], "--seed"),
]


@pytest.fixture
def results(tmp_path):
    """A small valid results directory (one plan, two labels, two seeds)."""
    root = tmp_path / "results"
    jobs = {}
    for label, seed, seen, unseen in [("A", 1, 0.8, 0.5), ("A", 2, 0.6, 0.3),
                                      ("B", 1, 0.4, 0.2), ("B", 2, 0.2, 0.0)]:
        for rec in _records(label, "marine_easy", "q", seed, seen, unseen):
            jid = eval_id(label, seed, rec["task"])
            write_eval(root, jid, [rec])
            jobs[jid] = {"kind": "eval", "title": f"eval {label} {rec['task']} s{seed}",
                         **{k: rec[k] for k in ("label", "task_set", "quality", "seed", "task",
                                                "step")}}
    write_plan(root, jobs, ["A", "B"], ["marine_easy"], ["q"], [1, 2])
    return root


@pytest.fixture
def baseline(tmp_path, results):
    path = tmp_path / "baseline.json"
    assert invoke("baseline", "save", results, "--to", path).exit_code == 0
    return path


@pytest.mark.parametrize("args,names", OPTION_CASES,
                         ids=[f"option-{i}" for i in range(len(OPTION_CASES))])
def test_option_errors(tmp_path, results, baseline, args, names):
    file = tmp_path / "a_file"
    file.write_text("x")
    subs = {"{suite}": str(_suite(tmp_path, BASE)), "{results}": str(results),
            "{baseline}": str(baseline), "{file}": str(file), "{tmp}": str(tmp_path)}

    def sub(s: str) -> str:
        for k, v in subs.items():
            s = s.replace(k, v)
        return s

    before = tree(tmp_path)
    assert_refused(invoke(*map(sub, args)), sub(names))
    assert tree(tmp_path) == before


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "inf"])
def test_a_bad_memory_budget_variable_is_named(tmp_path, value):
    path = _suite(tmp_path, BASE)
    out = invoke("run", path, "--results", tmp_path / "r", "--data-dir", tmp_path / "d",
                 env={"MARLBENCH_DATA_MEMORY_GB": value})
    assert_refused(out, "MARLBENCH_DATA_MEMORY_GB")
    assert not (tmp_path / "r").exists()


def test_the_good_results_report_and_pass_their_own_baseline(results, baseline):
    assert invoke("report", results, "-f", "md").exit_code == 0
    assert invoke("check", results, "-b", baseline).exit_code == 0


def test_run_refuses_cuda_when_none_is_present(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = _suite(tmp_path, BASE)
    line = assert_refused(invoke("run", path, "--device", "cuda", "--results", tmp_path / "r"),
                          "--device")
    assert "no CUDA device" in line
    suite_cuda = _suite(tmp_path, _edit("updates: 10", "updates: 10\n  device: cuda"), "c.yaml")
    assert "training.device" in assert_refused(invoke("run", suite_cuda, "--results",
                                                      tmp_path / "r"), str(suite_cuda))
    assert not (tmp_path / "r").exists()


# -- results directories: each file checked against its schema -------------------------------


def _first_eval(results: Path) -> Path:
    return sorted((results / "runs" / "eval").iterdir())[0]


def _set_record(field, value):
    def edit(results: Path) -> None:
        path = _first_eval(results) / "records.json"
        recs = json.loads(path.read_text())
        if value is _DELETE:
            del recs[0][field]
        else:
            recs[0][field] = value
        path.write_text(json.dumps(recs))
    return edit


_DELETE = object()


def _write(relative, content):
    def edit(results: Path) -> None:
        path = _first_eval(results) / relative if not relative.startswith("plans") else \
            results / relative
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return edit


def _truncate(relative):
    def edit(results: Path) -> None:
        path = _first_eval(results) / relative if not relative.startswith("plans") else \
            results / relative
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return edit


def _set_plan(mutate):
    def edit(results: Path) -> None:
        path = results / "plans" / "s.json"
        plan = json.loads(path.read_text())
        mutate(plan)
        path.write_text(json.dumps(plan))
    return edit


def _plan_job_id(plan, new_id):
    jid = next(iter(plan["jobs"]))
    plan["jobs"][new_id] = plan["jobs"].pop(jid)


RESULTS_CASES = [
    (_truncate("records.json"), "records.json", "not valid JSON"),
    (_write("records.json", "{}"), "records.json", "records file"),
    (_write("records.json", "[]"), "records.json", "records file"),
    (_write("records.json", b"\xff\xfe"), "records.json", "UTF-8"),
    (_set_record("win_rate", 1.5), "records.json", "win_rate"),
    (_set_record("win_rate", -0.1), "records.json", "win_rate"),
    (_set_record("win_rate", "high"), "records.json", "win_rate"),
    (_set_record("win_rate", _DELETE), "records.json", "win_rate"),
    (_set_record("label", _DELETE), "records.json", "label"),
    (_set_record("seed", -1), "records.json", "seed"),
    (_set_record("split", "both"), "records.json", "split"),
    (_set_record("step", -1), "records.json", "step"),
    (_set_record("episodes", 0), "records.json", "episodes"),
    (_set_record("mean_return", None), "records.json", "mean_return"),
    (_set_record("job_id", eval_id("someone else")), "records.json", "another job"),
    (_set_record("task", "3m"), "records.json", "task"),
    (_set_record("seed", 7), "records.json", "seed"),
    (_set_record("colour", "red"), "records.json", "colour"),
    (_write("records.json", '[{"win_rate": NaN}]'), "records.json", "NaN"),
    (_truncate("status.json"), "status.json", "not valid JSON"),
    (_write("status.json", "[]"), "status.json", "status file"),
    (_write("status.json", json.dumps({**status(eval_id(0)), "state": "weird"})),
     "status.json", "state"),
    (_truncate("plans/s.json"), "s.json", "not valid JSON"),
    (_write("plans/s.json", "[]"), "s.json", "plan file"),
    (_set_plan(lambda p: p.pop("jobs")), "s.json", "jobs"),
    (_set_plan(lambda p: p.update(suite="other")), "s.json", "suite"),
    (_set_plan(lambda p: p.update(checkpoint="newest")), "s.json", "checkpoint"),
    (_set_plan(lambda p: p.update(last_k=0)), "s.json", "last_k"),
    (_set_plan(lambda p: p.update(seeds=[-1])), "s.json", "seeds"),
    (_set_plan(lambda p: _plan_job_id(p, "../../../etc")), "s.json", "jobs"),
    (_set_plan(lambda p: _plan_job_id(p, "train-" + "0" * 16)), "s.json", "listed as"),
    (_write("plans/s.json", b"\x00\x01"), "s.json", "not valid JSON"),
]


@pytest.mark.parametrize("edit,file,names", RESULTS_CASES,
                         ids=[f"results-{i}" for i in range(len(RESULTS_CASES))])
def test_results_file_errors(results, edit, file, names):
    edit(results)
    for args in (["report", results], ["check", results, "-b", results / "missing.json"]):
        if args[0] == "check":
            continue  # the baseline error would come first; report is the reader here
        line = assert_refused(invoke(*args), file)
        assert names in line


def test_a_done_eval_job_without_records_says_so_and_is_rerun(tmp_path):
    """The cell says the records are missing; ``run`` re-runs that job (fake job functions)."""
    from marlbench.executors.local import execute
    from marlbench.plan import make_plan
    from marlbench.results.store import Store
    from marlbench.suite import load_suite

    suite = load_suite(_suite(tmp_path, BASE))
    plan = make_plan(suite, tmp_path / "data")
    store = Store(tmp_path / "results", tmp_path / "data")
    store.save_plan(plan, None)
    fake = {k: f"fake_jobs:{k}" for k in ("dataset", "train", "eval")}
    opts = {"job_functions": fake, "suite": "t"}
    assert execute(plan, store, workers=0, opts=opts).ok
    victim = next(j for j in plan.of_kind("eval") if j.config["step"] == 10)
    (store.job_dir(victim) / "records.json").unlink()
    ok, problem = store.done_state(victim)
    assert not ok and "records.json is missing" in problem
    out = invoke("report", tmp_path / "results", "-f", "md")
    assert out.exit_code == 0 and "records are missing" in out.output, out.output
    again = execute(plan, store, workers=0, opts=opts)
    assert again.done == [victim.id]
    assert store.done_state(victim) == (True, None)


OUTPUT_BREAKS = [
    ("train", lambda d: (d / "metrics.jsonl").unlink(), "metrics.jsonl is missing"),
    ("train", lambda d: next((d / "checkpoints").iterdir()).unlink(), "is missing"),
    ("train", lambda d: next((d / "checkpoints").iterdir()).write_bytes(b"PK\x03"),
     "truncated"),
    ("train", lambda d: (d / "job.json").write_text("{"), "not valid JSON"),
    ("eval", lambda d: (d / "records.json").write_text("[]"), "records file"),
    ("eval", lambda d: (d / "status.json").write_text('{"state": "done"}'), "status file"),
    ("eval", lambda d: (d / "job.json").unlink(), "does not exist"),
]


@pytest.mark.parametrize("kind,brk,reason", OUTPUT_BREAKS,
                         ids=[f"outputs-{i}" for i in range(len(OUTPUT_BREAKS))])
def test_a_job_with_missing_or_invalid_outputs_is_not_done(tmp_path, kind, brk, reason):
    from marlbench.executors.local import execute
    from marlbench.plan import make_plan
    from marlbench.results.store import Store
    from marlbench.suite import load_suite

    plan = make_plan(load_suite(_suite(tmp_path, BASE)), tmp_path / "data")
    store = Store(tmp_path / "results", tmp_path / "data")
    fake = {k: f"fake_jobs:{k}" for k in ("dataset", "train", "eval")}
    assert execute(plan, store, workers=0, opts={"job_functions": fake}).ok
    job = plan.of_kind(kind)[0]
    brk(store.job_dir(job))
    ok, problem = store.done_state(job)
    assert not ok and reason in problem, problem
    rerun = execute(plan, store, workers=0, opts={"job_functions": fake})
    assert job.id in rerun.done and store.is_done(job)


# -- baselines: check fails closed ------------------------------------------------------------


def _baseline_edit(mutate):
    def edit(path: Path) -> None:
        doc = json.loads(path.read_text())
        mutate(doc)
        path.write_text(json.dumps(doc))
    return edit


def _cell0(field, value):
    return _baseline_edit(lambda d: d["cells"][0].update({field: value}))


BASELINE_CASES = [
    (_baseline_edit(lambda d: d.update(cells=[])), "cells"),
    (_baseline_edit(lambda d: d.pop("cells")), "cells"),
    (_baseline_edit(lambda d: d.update(format="marlbench-baseline/0")), "format"),
    (_baseline_edit(lambda d: d.pop("format")), "format"),
    (_baseline_edit(lambda d: d.update(checkpoint="newest")), "checkpoint"),
    (_baseline_edit(lambda d: d["cells"].append(d["cells"][0])), "appears twice"),
    (_cell0("mean", float("nan")), "NaN"),
    (_cell0("mean", 150.0), "mean"),
    (_cell0("mean", "high"), "mean"),
    (_cell0("std", -1.0), "std"),
    (_cell0("n_seeds", 0), "n_seeds"),
    (_cell0("se", float("inf")), "Infinity"),
    (_baseline_edit(lambda d: d["cells"][0].pop("label")), "label"),
    (lambda p: p.write_text("[]"), "baseline"),
    (lambda p: p.write_text('{"format": "marlbench-baseline/1", "cells": ['), "not valid JSON"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "UTF-8"),
    (lambda p: p.write_text(""), "not valid JSON"),
]


@pytest.mark.parametrize("edit,names", BASELINE_CASES,
                         ids=[f"baseline-{i}" for i in range(len(BASELINE_CASES))])
def test_baseline_errors(results, baseline, edit, names):
    edit(baseline)
    line = assert_refused(invoke("check", results, "-b", baseline), str(baseline))
    assert names in line


def test_a_cell_that_cannot_be_compared_fails_the_gate():
    from marlbench.results.aggregate import Cell, Table
    from marlbench.results.baseline import check

    base = {"cells": [{"scenario": "Seen · Mean", "label": "A", "mean": 50.0, "std": 1.0,
                       "n_seeds": 2, "se": 0.7}]}
    table = Table("main", "t", "Scenario", ["Seen · Mean"], ["A"],
                  {("Seen · Mean", "A"): Cell(math.nan, 0.0, 2)}, "final")
    result = check(table, base, 5.0, None, [])
    assert not result.ok and "cannot be compared" in result.cells[0].reason
    for tol, sig in ((math.nan, None), (-1.0, None), (5.0, math.nan), (5.0, -1.0)):
        with pytest.raises(UserError):
            check(table, base, tol, sig, [])


def test_check_still_passes_and_fails_on_good_input(results, baseline, tmp_path):
    assert invoke("check", results, "-b", baseline, "--tolerance", "0").exit_code == 0
    doc = json.loads(baseline.read_text())
    for cell in doc["cells"]:
        cell["mean"] = min(100.0, cell["mean"] + 20)
    raised = tmp_path / "raised.json"
    raised.write_text(json.dumps(doc))
    assert invoke("check", results, "-b", raised).exit_code == 1


# -- published tables -------------------------------------------------------------------------

PUBLISHED_CASES = [
    ('{"name": "p", "title": "t", "source": "s", "backend": "b", "metric": "m", "tables": {}}',
     "tables"),
    ('{"name": "p", "title": "t", "source": "s", "backend": "b", "metric": "m", '
     '"tables": {"main": {"cells": {"Seen · Mean": {"A": NaN}}}}}', "NaN"),
    ('{"name": "p", "title": "t", "source": "s", "backend": "b", "metric": "m", '
     '"tables": {"main": {"cells": {"Seen · Mean": {"A": "high"}}}}}', "cells"),
    ('{"name": "p", "tables"', "not valid JSON"),
    ('[]', "published table"),
]


@pytest.mark.parametrize("text,names", PUBLISHED_CASES,
                         ids=[f"published-{i}" for i in range(len(PUBLISHED_CASES))])
def test_published_table_errors(tmp_path, results, text, names):
    folder = tmp_path / "published"
    folder.mkdir()
    (folder / "p.json").write_text(text)
    out = invoke("report", results, "--compare", "p", env={"MARLBENCH_PUBLISHED": str(folder)})
    assert names in assert_refused(out, "p.json")


# -- analysis checkpoints ---------------------------------------------------------------------


@pytest.fixture
def train_dir(tmp_path):
    """A train job folder as `run` leaves it: its job.json and one real checkpoint."""
    from marlbench.fileio import save_torch
    from marlbench.jobs import _build_learner
    from marlbench.plan import make_plan
    from marlbench.suite import load_suite

    plan = make_plan(load_suite(_suite(tmp_path, BASE)), tmp_path / "data")
    job = plan.of_kind("train")[0]
    d = tmp_path / "results" / "runs" / "train" / job.id
    (d / "checkpoints").mkdir(parents=True)
    (d / "job.json").write_text(json.dumps(job.to_dict()))
    learner = _build_learner(job.config, torch.device("cpu"))
    save_torch(d / "checkpoints" / "step_10.pt", {"step": 10, "learner": learner.state_dict()})
    return d


def _ckpt_edit(fn):
    return fn


CHECKPOINT_CASES = [
    (lambda d: (d / "checkpoints" / "step_10.pt").write_bytes(b"not a checkpoint"),
     ["dormant"], "not a readable checkpoint"),
    (lambda d: (d / "checkpoints" / "step_10.pt").write_bytes(
        (d / "checkpoints" / "step_10.pt").read_bytes()[:500]), ["dormant"],
     "not a readable checkpoint"),
    (lambda d: torch.save({"step": 10}, d / "checkpoints" / "step_10.pt"), ["dormant"],
     "not a readable checkpoint"),
    (lambda d: torch.save({"step": 10, "learner": {"agent": {}}},
                          d / "checkpoints" / "step_10.pt"), ["dormant"],
     "not a readable checkpoint"),
    (lambda d: (d / "job.json").write_text("{"), ["dormant"], "not valid JSON"),
    (lambda d: (d / "job.json").unlink(), ["dormant"], "not a checkpoint of a marlbench"),
    (lambda d: (d / "job.json").write_text(json.dumps(
        {**json.loads((d / "job.json").read_text()), "deps": ["x"]})), ["dormant"], "deps"),
    (lambda d: (d / "job.json").write_text(json.dumps(
        {**json.loads((d / "job.json").read_text()), "config": {"edited": True}})),
     ["dormant"], "does not match"),
    (lambda d: None, ["dormant", "--task", "27m_vs_30m"], "not a test task"),
    (lambda d: None, ["attention", "--agent", "99"], "--agent"),
]


@pytest.mark.parametrize("edit,args,names", CHECKPOINT_CASES,
                         ids=[f"checkpoint-{i}" for i in range(len(CHECKPOINT_CASES))])
def test_analysis_checkpoint_errors(train_dir, tmp_path, edit, args, names):
    edit(train_dir)
    ckpt = train_dir / "checkpoints" / "step_10.pt"
    cmd, *rest = args
    if "--task" not in rest:
        rest = ["--task", "3m", *rest]
    out = tmp_path / "analysis"
    extra = ["--out", out] if cmd == "attention" else []
    line = assert_refused(invoke("analyze", cmd, ckpt, *rest, *extra, "--data-dir",
                                 tmp_path / "data"), names)
    assert line
    assert not out.exists()


def test_a_missing_checkpoint(tmp_path):
    missing = tmp_path / "step_1.pt"
    assert_refused(invoke("analyze", "dormant", missing, "--task", "3m"), str(missing))


def test_a_dataset_whose_manifest_fails_its_schema_is_collected_again(tmp_path):
    """The commit mark over invalid outputs is removed (and logged), so the job runs again
    instead of refusing to touch the folder; a behaviour run's summary likewise."""
    from marlbench.executors.local import execute
    from marlbench.jobs import _clear_invalid_commit_mark
    from marlbench.plan import Job, make_plan
    from marlbench.results.store import Store
    from marlbench.suite import load_suite

    plan = make_plan(load_suite(_suite(tmp_path, BASE)), tmp_path / "data")
    store = Store(tmp_path / "results", tmp_path / "data")
    fake = {k: f"fake_jobs:{k}" for k in ("dataset", "train", "eval")}
    assert execute(plan, store, workers=0, opts={"job_functions": fake}).ok
    job = plan.of_kind("dataset")[0]
    manifest = store.job_dir(job) / "manifest.json"
    doc = json.loads(manifest.read_text())
    del doc["parts"][0]["sha256"]
    manifest.write_text(json.dumps(doc))
    ok, problem = store.done_state(job)
    assert not ok and "sha256" in problem and "manifest.json" in problem
    again = execute(plan, store, workers=0, opts={"job_functions": fake})
    assert again.done == [job.id] and store.is_done(job)
    assert "removing" in (store.job_dir(job) / "log.txt").read_text()

    behaviour = Job("behaviour", {"backend": "smax", "task": "3m", "settings": {}, "seed": 0,
                                  "version": 1})
    d = store.job_dir(behaviour)
    d.mkdir(parents=True)
    (d / "summary.json").write_text('{"task": "3m"}')
    (d / "state.pt").write_bytes(b"kept")
    _clear_invalid_commit_mark(behaviour, store, d)
    assert not (d / "summary.json").exists() and (d / "state.pt").exists()
