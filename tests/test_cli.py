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


def test_simulate_table_is_human_readable(capsys):
    assert main(["simulate", *FAST, "--family", "poisson", "--gamma", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "pearson" in out and "TRAK" in out and "poisson" in out


@pytest.mark.parametrize("argv", [
    ["simulate", "--p", "-3"],
    ["simulate", "--p", "abc"],
    ["simulate", "--kappa", "2"],
    ["simulate", "--lam", "inf"],
    ["simulate", "--family", "probit"],
    ["simulate", "--n-proj", "0"],
    ["simulate", "--unknown-flag"],
    ["simulate", "--projection", "identity", "--kappa", "0.3"],
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
