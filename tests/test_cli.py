"""The `trak-sim` command line: help, JSON output, one-sentence errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from sims.cli import main

FAST = ["--p", "30", "--n-test", "3", "--reps", "1", "--no-progress"]


def test_simulate_json_is_machine_readable(capsys):
    assert main(["simulate", *FAST, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["p"] == 30 and "trak" in out["estimators"]


def test_predict_lds_alpha(capsys):
    assert main(["predict", "--family", "gaussian", "--lds-alpha", "0.5", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimators"]
    assert set(est["loo"]) == {"lds"} and 0 < est["trak"]["lds"] < est["loo"]["lds"] < 1
    assert main(["predict", "--family", "gaussian", "--lds-alpha", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-1] == "lds" and lines[2].split()[0] == "LOO"


def test_simulate_table_is_human_readable(capsys):
    assert main(["simulate", *FAST, "--family", "poisson", "--gamma", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "pearson" in out and "TRAK" in out and "poisson" in out


@pytest.mark.parametrize("argv", [
    ["simulate", "--p", "-3"],
    ["simulate", "--p", "abc"],
    ["simulate", "--kappa", "2"],
    ["simulate", "--lam", "inf"],
    ["simulate", "--family", "cauchy"],
    ["simulate", "--n-proj", "0"],
    ["simulate", "--unknown-flag"],
    ["simulate", "--projection", "identity", "--kappa", "0.3"],
    ["predict", "--lds-alpha", "1"],
    ["predict", "--lds-alpha", "0"],
    ["frobnicate"],
])
def test_bad_input_is_one_sentence_and_exit_code_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err


def test_help_documents_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--family", "--delta", "--kappa", "--lam", "--lam-trak", "--gamma", "--sigma",
                 "--n-proj", "--projection", "--p", "--n-test", "--reps", "--seed", "--json"):
        assert flag in text
    assert "default" in text


def test_console_script_exit_code_in_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "sims.cli", "simulate", "--delta", "-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "trak-sim: error: delta must be > 0, got -1."


# ------------------------------------------------------------------------------------ compare
@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """A real sweep table: one logistic configuration at p = 20, two replicates."""
    d = tmp_path_factory.mktemp("compare")
    spec = d / "spec.toml"
    spec.write_text('name = "cmp"\n[defaults]\nfamily = "logistic"\np = 20\ndelta = 2.0\nkappa = 0.5\n'
                    'n_test = 4\nreps = 2\nseed = 3\n')
    assert main(["sweep", str(spec), "--out", str(d / "out"), "--no-progress", "--json"]) == 0
    return d / "out" / "table.csv"


def test_compare_exit_code_1_when_the_theory_is_wrong(small_table, monkeypatch, capsys):
    import theory

    capsys.readouterr()
    assert main(["compare", str(small_table)]) == 0           # the true theory passes
    true_predict = theory.predict

    def wrong(**kw):
        out = true_predict(**kw)
        out["estimators"]["trak"]["pearson"] -= 0.5
        return out

    monkeypatch.setattr(theory, "predict", wrong)
    capsys.readouterr()
    assert main(["compare", str(small_table), "--json"]) == 1
    comps = json.loads(capsys.readouterr().out)
    bad = [(c["estimator"], c["metric"]) for c in comps if not c["ok"]]
    assert bad == [("trak", "pearson")]


def test_compare_exit_code_1_with_zero_tolerance(small_table, capsys):
    assert main(["compare", str(small_table), "--n-se", "0", "--allowance", "0"]) == 1
    assert "NO" in capsys.readouterr().out


def test_comparing_nothing_is_an_error(small_table, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text(small_table.read_text().splitlines()[0] + "\n")
    for argv in (["compare", str(empty)], ["compare", str(header_only)],
                 ["compare", str(small_table), "--estimators", "trak_w"],
                 ["compare", str(small_table), "--estimators", ""]):
        assert main(argv) == 2, argv
        out = capsys.readouterr()
        err = out.err.strip()
        assert "nothing to compare" in err and "\n" not in err and "Traceback" not in err, argv
        assert not out.out.strip(), argv


def test_compare_help_states_the_allowances_of_the_code(capsys):
    from sims.runs.compare import DEFAULT_ALLOWANCE, NS_REL_ERROR_ALLOWANCE

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"rel_error {DEFAULT_ALLOWANCE['rel_error']:g}" in text
    assert f"NS at least {NS_REL_ERROR_ALLOWANCE:g}" in text
    assert f"scale {DEFAULT_ALLOWANCE['scale']:.0%} of the prediction" in text
    assert "0.03, scale 0.05" not in text


# ------------------------------------------------------------ last-resort handler of main()
def _raise(exc):
    def run(**kw):
        raise exc
    return run


@pytest.mark.parametrize("exc, words", [
    (MemoryError(), "out of memory"),
    ("jax-oom", "out of memory"),
    ("wrapped-oom", "out of memory"),
    (OverflowError("Python int too large to convert to C long\nmore"), "too large"),
])
def test_resource_errors_are_one_sentence_and_exit_code_2(exc, words, monkeypatch, capsys):
    import sims
    from jax.errors import JaxRuntimeError

    if exc == "jax-oom":
        exc = JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4000000000000 bytes.\ndetails")
    if exc == "wrapped-oom":   # as the Ray executor re-raises a task's error
        exc = type("RayTaskError(JaxRuntimeError)", (JaxRuntimeError,), {})("RESOURCE_EXHAUSTED: oom")
    monkeypatch.setattr(sims, "simulate", _raise(exc))
    assert main(["simulate", *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "reduce" in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("exc", [ValueError("a bug"), RuntimeError("a bug"), ZeroDivisionError()])
def test_other_exceptions_keep_their_traceback(exc, monkeypatch):
    import sims
    from jax.errors import JaxRuntimeError

    monkeypatch.setattr(sims, "simulate", _raise(exc))
    with pytest.raises(type(exc)):
        main(["simulate", *FAST])
    monkeypatch.setattr(sims, "simulate", _raise(JaxRuntimeError("INTERNAL: something else")))
    with pytest.raises(JaxRuntimeError):
        main(["simulate", *FAST])


# ------------------------------------------------------------------------------------ figures
def test_figures_json_lists_what_was_written(tmp_path, monkeypatch, capsys):
    import types

    import figures

    def make(preset, progress=True):
        path = tmp_path / f"fig_cli_dummy_{preset}.png"
        path.write_text("png")
        return [str(path)]

    monkeypatch.setattr(figures, "names", lambda: ["fig_cli_dummy"])
    monkeypatch.setattr(figures, "load", lambda name: types.SimpleNamespace(make=make))
    assert main(["figures", "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["fig_cli_dummy"]
    assert main(["figures", "--only", "fig_cli_dummy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "quick" and [f["name"] for f in out["figures"]] == ["fig_cli_dummy"]
    fig = out["figures"][0]
    assert fig["paths"] == [str(tmp_path / "fig_cli_dummy_quick.png")] and fig["wall_time_s"] >= 0
    assert out["wall_time_s"] >= fig["wall_time_s"]


def test_parameters_reference_is_generated_from_the_declarations():
    """docs/parameters.md is what `python -m sims.engine.params` writes from MODEL_PARAMS and
    SIM_PARAMS, and every declared parameter is a keyword of predict / simulate and an option of the
    CLI: the reference cannot drift from the code."""
    import inspect
    from pathlib import Path

    import sims
    import theory
    from sims.engine.params import SIM_PARAMS, parameters_markdown
    from theory.params import MODEL_PARAMS

    doc = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"
    assert doc.read_text() == parameters_markdown(), \
        "docs/parameters.md is stale: run .venv/bin/python -m sims.engine.params > docs/parameters.md"
    predict_kw = inspect.signature(theory.predict).parameters
    simulate_kw = inspect.signature(sims.simulate).parameters
    for prm in MODEL_PARAMS:
        assert predict_kw[prm.name].default == prm.default and simulate_kw[prm.name].default == prm.default
    for prm in SIM_PARAMS:
        assert simulate_kw[prm.name].default == prm.default
    import argparse

    from sims.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command, params in (("predict", MODEL_PARAMS), ("simulate", MODEL_PARAMS + SIM_PARAMS)):
        options = {o for a in commands[command]._actions for o in a.option_strings}
        assert {prm.option for prm in params} <= options
