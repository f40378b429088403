"""Suite validation through the CLI: file:line messages, exit code 2, no tracebacks."""

import textwrap

import pytest
from typer.testing import CliRunner

from marlbench.cli.main import app
from marlbench.suite import load_suite

runner = CliRunner()

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
profiles:
  quick:
    training: {updates: 5}
"""


def _write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_valid_suite(tmp_path):
    result = _invoke("validate", _write(tmp_path, BASE))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("seeds: [1]", "seeds: [1]\nseedz: [2]", ":6: seedz: unknown field 'seedz'"),
        ("[marine_easy]", "[marine_medium]", ":3: task_sets: unknown task set 'marine_medium'; "
         "choose one of: marine_easy, marine_hard"),
        ("updates: 10", "updates: ten", ":9: training.updates: Input should be a valid integer"),
        ("- name: bc_t", "- name: bc_x", ":7: algorithms.0.name: unknown algorithm 'bc_x'"),
        ("{updates: 5}", "{updatez: 5}",
         ":12: profiles.quick.training.updatez: unknown field 'updatez'"),
        ("[scripted]", "[experts]", ":4: qualities: unknown data quality 'experts'; choose one "
         "of: expert, medium, medium-replay, medium-expert, good, poor, scripted"),
    ],
)
def test_validation_errors_name_file_line_and_field(tmp_path, old, new, expected):
    path = _write(tmp_path, BASE.replace(old, new))
    result = _invoke("validate", path)
    assert result.exit_code == 2
    assert f"{path}{expected}" in result.output


def test_unknown_profile_lists_profiles(tmp_path):
    path = _write(tmp_path, BASE)
    result = _invoke("run", path, "--profile", "paper", "--dry-run")
    assert result.exit_code == 2
    assert "unknown profile 'paper'; profiles: quick" in result.output


def test_profile_overrides_fields(tmp_path):
    suite = load_suite(_write(tmp_path, BASE), "quick")
    assert suite.training.updates == 5


def test_bad_yaml_and_missing_file(tmp_path):
    path = _write(tmp_path, "name: [unclosed\n")
    result = _invoke("validate", path)
    assert result.exit_code == 2 and "not valid YAML" in result.output
    result = _invoke("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_unknown_algorithm_parameter(tmp_path):
    path = _write(tmp_path, BASE.replace("- name: bc_t", "- name: bc_t\n    params: {embb: 3}"))
    result = _invoke("validate", path)
    assert result.exit_code == 2
    assert "unknown parameter(s) embb for bc_t" in result.output


def test_list_and_help():
    for what in ("tasksets", "algorithms", "qualities"):
        result = _invoke("list", what)
        assert result.exit_code == 0, result.output
    assert "marine_easy" in _invoke("list", "tasksets").output
    algorithms = " ".join(_invoke("list", "algorithms").output.split())
    for name in ("bc_r", "hissd"):  # the reference behaviours each copies only when asked
        assert f"{name}: reference_quirks=true reproduces" in algorithms
    for cmd in ("run", "report", "validate", "list"):
        result = _invoke(cmd, "--help")
        assert result.exit_code == 0 and "Example" in result.output


def test_shipped_suites_validate(root):
    for path in sorted((root / "suites").glob("*.yaml")):
        result = _invoke("validate", path)
        assert result.exit_code == 0, result.output


def test_backend_and_quality_must_fit_the_task_sets(tmp_path):
    path = _write(tmp_path, BASE.replace("[marine_easy]", "[cn]"))
    result = _invoke("validate", path)
    assert result.exit_code == 2
    assert "task set 'cn' does not run on backend 'smax'; it runs on: grid" in result.output
    path = _write(tmp_path, BASE.replace("[marine_easy]", "[cn]").replace("smax", "grid"))
    result = _invoke("validate", path)
    assert result.exit_code == 2
    assert "data quality 'scripted' cannot be collected on backend 'grid'" in result.output


def test_bare_table_flag_means_the_main_table(tmp_path):
    from marlbench.cli.main import bare_table_flag

    assert bare_table_flag(["report", "--table"]) == ["report", "--table", "main"]
    assert bare_table_flag(["report", "--table", "-f", "md"])[2] == "main"
    assert bare_table_flag(["report", "--table", str(tmp_path)])[2] == "main"
    assert bare_table_flag(["report", "--table", "ablation"]) == ["report", "--table",
                                                                 "ablation"]
    assert bare_table_flag(["run", "--table"]) == ["run", "--table"]
