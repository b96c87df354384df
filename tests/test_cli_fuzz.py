"""CLI fuzzing: generated invalid invocations of every subcommand exit with code 2 and one sentence.

The invocations are enumerated (no random seed, so the set is the same on every run and every case
is distinct): bad numbers (unparseable, NaN/inf, huge, out of range) for every numeric option,
bad choices, cross-parameter violations, problems too large for the memory, unknown flags and
subcommands, malformed and invalid TOML sweep specs, unwritable output folders, and missing,
empty, malformed or invalid CSV tables for `compare`. They run in-process through `sims.cli.main`;
a few run as real processes to show that no traceback or warning reaches a real terminal.
"""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from sims.cli import main
from sims.runs.store import TABLE_COLUMNS

UNPARSEABLE = ["abc", "", "2x", "1,5", "0x10", "nan", "inf", "-inf", "1e999", "--"]
HUGE = ["1e300", "-1e300", "99999999999999999999"]

# Out-of-range values of each numeric option (the defaults of the others keep them in range).
MODEL_BAD = {
    "--delta": ["-1", "0", "1e-4", "1e7"],
    "--kappa": ["0", "-0.5", "1.5", "1e-7"],
    "--lam": ["-0.5", "1e-9", "1e9"],
    "--lam-trak": ["-1", "1e-12", "2e8"],
    "--gamma": ["-0.1", "21"],                  # default family logistic: gamma <= 20
    "--sigma": ["-1", "1e7"],
    "--n-proj": ["0", "-3", "1.5", "10000000000001"],
    "--cov-param": ["0.5", "-1"],               # the default covariance (isotropic) takes none
    "--alignment": ["0.5", "3", "-2.5"],
}
PREDICT_BAD = {"--p": ["0", "1", "-7", "2.5", "10000001"]}
SIMULATE_BAD = {
    "--p": ["0", "1", "-3", "2.5", "200001"],
    "--n-test": ["0", "-1", "100001", "2.5"],
    "--reps": ["0", "-2", "100001"],
    "--seed": ["-1", "9223372036854775808", "0.5"],
    "--top-m": ["0", "401", "1.5"],             # n = 400 at the defaults
    "--lds-subsets": ["1", "2", "-1", "10001"],
    "--tol": ["0", "1e-16", "1e-3", "-1e-10"],
    "--memory-mb": ["0", "-5"],
}
SIMULATE_N_PROJ_BAD = ["10001"]                 # simulation: at most 10^4 projections
CHOICES = {"--family": ["cauchy", "", "LOGIT", "1"], "--projection": ["sparse", "none", ""],
           "--covariance": ["toeplitz", "", "Isotropic"]}
SIMULATE_CHOICES = {"--design": ["normal", "", "t"]}

CROSS = [   # each value in its own range, the combination invalid (for predict and simulate)
    *[["--delta", d, "--kappa", k] for d, k in [("0.4", "0.5"), ("0.1", "0.1"), ("0.9", "1")]],  # lam_trak = 0, k >= n
    *[["--projection", "identity", "--kappa", k] for k in ("0.3", "0.999")],
    ["--projection", "identity", "--kappa", "1", "--n-proj", "2", "--lam-trak", "0.1"],
    ["--projection", "identity", "--kappa", "1", "--delta", "0.9"],            # lam_trak = 0, n <= p
    *[["--lam", "0", "--delta", d, "--lam-trak", "1"] for d in ("0.5", "1")],  # lam = 0, n <= p
    ["--family", "gaussian", "--gamma", "0", "--sigma", "0"],
    ["--family", "gaussian", "--sigma", "0", "--lam", "0"],
    ["--family", "gaussian", "--gamma", "1e7"],
    ["--family", "poisson", "--gamma", "1.6"],
    ["--family", "logistic", "--gamma", "1e6"],
    ["--covariance", "ar1", "--cov-param", "1"],
    ["--covariance", "power", "--cov-param", "3.5"],
    ["--covariance", "spiked", "--cov-param", "1001"],
    ["--covariance", "spiked", "--cov-param", "-2"],
    ["--covariance", "power", "--cov-param", "1", "--alignment", "2.5"],
    ["--alignment", "1"],
]
PREDICT_CROSS = [
    ["--covariance", "power", "--cov-param", "1"],                          # needs --p
    ["--covariance", "power", "--cov-param", "1", "--p", "20", "--lds-alpha", "0.5"],   # no theory
    ["--lam", "0", "--delta", "1.5"],                                       # separable (EstimatorDoesNotExist)
]
SIMULATE_CROSS = [
    ["--p", "200000", "--delta", "100"],                                    # beyond any memory
    ["--p", "100000", "--delta", "50", "--kappa", "0.01"],
    ["--p", "3", "--delta", "0.5", "--lam-trak", "1"],                      # n < 4
    ["--p", "10", "--top-m", "21"],
    ["--p", "10", "--delta", "0.46", "--kappa", "0.454"],                   # kappa < delta, yet k = n
    ["--p", "10", "--memory-mb", "99999999999999999999"],                   # more than the machine
]
USAGE = [
    *[["predict", flag, "1"] for flag in ("--foo", "--deltaa", "--n", "--k", "--lambda", "--lam-t", "--proj",
                                          "--n-test", "--seed")],             # --p is a predict option
    *[["simulate", flag, "1"] for flag in ("--foo", "--variant", "--memory", "--n_test", "--design-x")],
    *[[cmd] for cmd in ("frob", "simulat", "PREDICT", "sweeps", "", "-x")],
    ["simulate", "--p"], ["predict", "--delta"], ["predict", "extra"], ["sweep"], ["compare"],
    ["sweep", "a.toml", "b.toml"], ["compare", "a", "b"],
    *[["figures", "--preset", v] for v in ("fast", "", "Paper")],
    *[["figures", "--only", v] for v in ("fig_nope", "corr", "")],
    ["figures", "--only"], ["figures", "--list", "--bogus"],
]

# Sweep specs: malformed TOML, invalid structure, invalid or huge values (file name -> text).
SPECS = {
    "unclosed.toml": "name = [unclosed\n",
    "badescape.toml": 'name = "a\\q"\n',
    "duplicate.toml": "[defaults]\np = 10\np = 20\n",
    "badtable.toml": "[defaults\np = 10\n",
    "binary.toml": b"\xff\xfe\x00[defaults]\n",
    "empty.toml": "",
    "figure_only.toml": "[figure]\nx = 1\n",
    "unknown_top.toml": "[grids]\ndelta = [1.0]\n",
    "unknown_param.toml": "[grid]\nfoo = [1, 2]\n",
    "unknown_default.toml": "[defaults]\nmemory_budget = 1000\n",
    "unknown_point.toml": "[[points]]\nbar = 1\n",
    "not_a_list.toml": "[grid]\ndelta = 2.0\n",
    "empty_list.toml": "[grid]\ndelta = []\n",
    "defaults_not_table.toml": "defaults = 3\n",
    "points_not_tables.toml": "points = [1, 2]\n",
    "bad_name.toml": 'name = "a b"\n[defaults]\np = 10\n',
    "empty_name.toml": 'name = ""\n[defaults]\np = 10\n',
    "kappa2.toml": "[defaults]\np = 10\n[grid]\nkappa = [2.0]\n",
    "delta_nan.toml": "[defaults]\np = 10\ndelta = nan\n",
    "lam_inf.toml": "[defaults]\np = 10\nlam = inf\n",
    "gamma_huge.toml": "[defaults]\np = 10\nfamily = 'gaussian'\ngamma = 1e300\n",
    "p_huge.toml": "[defaults]\np = 99999999999999999999\n",
    "n_proj_huge.toml": "[defaults]\np = 10\nn_proj = 100000000000000\n",
    "memory.toml": "[defaults]\np = 200000\ndelta = 100.0\n",
    "p_string.toml": "[defaults]\np = 'ten'\n",
    "variants_string.toml": "[defaults]\np = 10\nvariants = 'yes'\n",
    "design_bad.toml": "[defaults]\np = 10\ndesign = 'normal'\n",
    "tol_bad.toml": "[defaults]\np = 10\ntol = 0.5\n",
    "lds_bad.toml": "[defaults]\np = 10\nlds_subsets = 2\n",
    "cov_bad.toml": "[defaults]\np = 10\ncovariance = 'ar1'\ncov_param = 1.5\n",
    "one_bad_point.toml": "[defaults]\np = 10\n[grid]\ndelta = [2.0, -1.0]\n",
    "preset_not_table.toml": "[defaults]\np = 10\n[presets]\nquick = 3\n",
    "preset_bad_grid.toml": "[defaults]\np = 10\n[presets.quick]\ngrid = 3\n",
}
SPEC_PRESET = {"preset_not_table.toml": "quick", "preset_bad_grid.toml": "quick"}

# compare: tables that are missing, empty, malformed or describe invalid configurations.
ROW = dict(spec="s", family="logistic", p="20", n="40", k="10", delta="2.0", kappa="0.5", lam="0.1",
           lam_trak="0.0", gamma="1.0", sigma="0.5", n_proj="1", projection="gaussian", covariance="isotropic",
           cov_param="0.0", alignment="0.0", design="gaussian", variants="False", lds_subsets="0", n_test="4",
           seed="3", top_m="2", tol="1e-10", rep="0", estimator="trak", metric="pearson", value="0.6", se="0.01",
           n_values="4", config_hash="abc", wall_time_s="1.0", code_version="x", jax_version="x", device="cpu")


def _table(rows, columns=TABLE_COLUMNS) -> str:
    return ",".join(columns) + "\n" + "".join(",".join(r.get(c, "") for c in columns) + "\n" for r in rows)


TABLES = {
    "empty.csv": "",
    "header_only.csv": ",".join(TABLE_COLUMNS) + "\n",
    "garbage.csv": "hello\nworld\n",
    "binary.csv": b"\xff\xfe\x00\x01garbage",
    "unterminated_quote.csv": '"unterminated\n',
    "nul.csv": "a,b\x00,c\n1,2,3\n",
    "missing_column.csv": _table([ROW], [c for c in TABLE_COLUMNS if c != "kappa"]),
    "p_not_a_number.csv": _table([{**ROW, "p": "x"}]),
    "value_not_a_number.csv": _table([{**ROW, "value": "high"}]),
    "kappa_out_of_range.csv": _table([{**ROW, "kappa": "5"}]),
    "delta_huge.csv": _table([{**ROW, "delta": "1e300"}]),
    "family_unknown.csv": _table([{**ROW, "family": "cauchy"}]),
    "covariance_unknown.csv": _table([{**ROW, "covariance": "toeplitz"}]),
    "estimator_unknown.csv": _table([{**ROW, "estimator": "foo"}]),
    "metric_unknown.csv": _table([{**ROW, "metric": "auc"}]),
}
GOOD_TABLE = _table([ROW])
COMPARE_OPTIONS = [["--metrics", "top_overlap"], ["--metrics", "auc"], ["--metrics", "pearson,x"],
                   ["--estimators", "loo"], ["--estimators", "trak,foo"], ["--estimators", "TRAK"],
                   ["--n-se", "-1"], ["--n-se", "nan"], ["--n-se", "1e999"], ["--allowance", "-0.1"],
                   ["--allowance", "inf"], ["--allowance", "abc"], ["--metrics", ","]]


def invalid_invocations(tmp: Path) -> list[list[str]]:
    """Every generated invalid argv (distinct)."""
    cases = []
    for cmd in ("predict", "simulate"):
        numeric = {**MODEL_BAD, **(PREDICT_BAD if cmd == "predict" else SIMULATE_BAD)}
        if cmd == "simulate":
            numeric["--n-proj"] = MODEL_BAD["--n-proj"] + SIMULATE_N_PROJ_BAD
        for flag, bad in numeric.items():
            cases += [[cmd, flag, v] for v in dict.fromkeys(bad + HUGE + UNPARSEABLE)]
        for flag, bad in {**CHOICES, **(SIMULATE_CHOICES if cmd == "simulate" else {})}.items():
            cases += [[cmd, flag, v] for v in bad]
        cases += [[cmd, *argv] for argv in CROSS + (PREDICT_CROSS if cmd == "predict" else SIMULATE_CROSS)]
    cases += USAGE

    specs = tmp / "specs"
    specs.mkdir()
    for name, text in SPECS.items():
        (specs / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        cases.append(["sweep", str(specs / name)] + (["--preset", SPEC_PRESET[name]] if name in SPEC_PRESET else []))
    good = specs / "good.toml"
    good.write_text("[defaults]\np = 10\nreps = 1\nn_test = 2\n")
    blocker = tmp / "file_not_dir"
    blocker.write_text("x")
    cases += [["sweep", str(tmp / "missing.toml")], ["sweep", str(tmp)],
              ["sweep", str(good), "--preset", "nope"], ["sweep", str(good), "--max-points", "-2"],
              ["sweep", str(good), "--max-points", "1.5"], ["sweep", str(good), "--executor", "dask"],
              *[["sweep", str(good), "--out", out] for out in
                (str(blocker / "sub"), str(blocker), "/proc/version/sub", "/dev/null/x")]]

    tables = tmp / "tables"
    tables.mkdir()
    for name, text in TABLES.items():
        (tables / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        cases.append(["compare", str(tables / name)])
    (tables / "good.csv").write_text(GOOD_TABLE)
    cases += [["compare", str(tables / "good.csv"), *opts] for opts in COMPARE_OPTIONS]
    cases += [["compare", str(tmp / "missing")], ["compare", str(tmp / "missing.csv")], ["compare", str(specs)]]

    distinct = list(dict.fromkeys(map(tuple, cases)))
    assert len(distinct) == len(cases), "the generator repeats itself"
    return [list(c) for c in distinct]


def test_at_least_two_hundred_distinct_invalid_invocations_exit_2_with_one_sentence(tmp_path, capsys):
    cases = invalid_invocations(tmp_path)
    assert len(cases) >= 200
    assert {c[0] for c in cases if c} >= {"predict", "simulate", "sweep", "compare", "figures"}
    for option in ("--covariance", "--cov-param", "--alignment", "--design", "--lds-subsets", "--tol",
                   "--memory-mb", "--top-m", "--p"):
        assert any(option in c for c in cases), option
    capsys.readouterr()
    for argv in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                code = main(argv)
            except SystemExit as e:      # argparse's own exits (--help, --version) are not expected
                code = f"SystemExit({e.code})"
        out = capsys.readouterr()
        err = out.err.strip()
        assert code == 2, (argv, code, err)
        assert err and "\n" not in err and "Traceback" not in err, (argv, err)
        assert err.endswith("."), (argv, err)
        assert not out.out.strip(), (argv, out.out)
        assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], (argv, caught[0].message)


@pytest.mark.parametrize("name, text", [
    ("short_row.csv", ",".join(TABLE_COLUMNS) + "\nlogistic,20\n"),     # TypeError in store.read_table
    ("p_zero.csv", _table([{**ROW, "p": "0"}])),                       # ZeroDivisionError in the allowance
    ("p_negative.csv", _table([{**ROW, "p": "-5"}])),                  # math domain error in the allowance
    ("se_inf.csv", _table([{**ROW, "se": "inf"}])),                      # passed with exit 0
    ("value_nan.csv", _table([{**ROW, "value": "nan"}])),                # compared as a failure, exit 1
    ("variants_yes.csv", _table([{**ROW, "variants": "yes"}])),          # read as False
    ("no_column.csv", "family,p\nlogistic,20\n"),
])
def test_compare_refuses_malformed_rows(tmp_path, capsys, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert main(["compare", str(path)]) == 2


def test_real_processes_print_one_sentence_and_no_traceback(tmp_path):
    """A few invocations of the installed console script, concurrently (a real stderr, no capture)."""
    script = Path(sys.executable).with_name("trak-sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sims.cli"]
    (tmp_path / "bad.toml").write_text("name = [unclosed\n")
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    argvs = [["predict", "--delta", "1e300"], ["predict", "--lam", "1e-300"],
             ["simulate", "--p", "200000", "--delta", "100"], ["sweep", str(tmp_path / "bad.toml")],
             ["compare", str(tmp_path / "bad.csv")], ["figures", "--only", "fig_nope"]]
    procs = [subprocess.Popen(command + a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argvs]
    for argv, proc in zip(argvs, procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (argv, proc.returncode, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("trak-sim: error: "), (argv, err)
        assert not out.strip(), (argv, out)


@pytest.mark.parametrize("cmd", ["predict", "simulate", "sweep", "compare", "figures"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
