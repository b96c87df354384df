"""CLI fuzzing: generated invalid invocations of every subcommand exit with code 2 and one sentence."""

import random

import pytest

from sims.cli import main

MODEL_FLAGS = ["--delta", "--kappa", "--lam", "--lam-trak", "--gamma", "--sigma", "--n-proj"]
BAD_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "abc", "", "1e999", "2x", "--", "1,5", "0x10"]
BAD_CHOICES = {"--family": ["probit", "", "LOGIT", "1"], "--projection": ["sparse", "none", ""]}


def _invalid_invocations(rng: random.Random, tmp_path):
    """Yield argv lists that must all be refused."""
    bad_spec = tmp_path / "bad.toml"
    bad_spec.write_text("name = [unclosed\n")
    unknown_key = tmp_path / "unknown.toml"
    unknown_key.write_text("[grid]\nfoo = [1, 2]\n")
    bad_grid = tmp_path / "badgrid.toml"
    bad_grid.write_text("[defaults]\np = 10\n[grid]\nkappa = [2.0]\n")
    not_a_list = tmp_path / "notalist.toml"
    not_a_list.write_text("[grid]\ndelta = 2.0\n")
    good_spec = tmp_path / "good.toml"
    good_spec.write_text("[defaults]\np = 10\nreps = 1\nn_test = 2\n")
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")
    for _ in range(60):   # numeric flags with bad values, on predict and simulate
        cmd = rng.choice(["predict", "simulate"])
        flag = rng.choice(MODEL_FLAGS + (["--p", "--n-test", "--reps", "--seed"] if cmd == "simulate" else []))
        value = rng.choice(BAD_NUMBERS)
        if flag in ("--kappa",) and value in ("inf",):
            value = "2"
        argv = [cmd, flag, value]
        if flag in ("--gamma", "--sigma", "--lam", "--lam-trak") and value == "0":
            argv = [cmd, flag, "-0.5"]
        if flag in ("--delta",) and value == "0":
            argv = [cmd, flag, "-3"]
        yield argv
    for _ in range(30):   # bad choices
        flag = rng.choice(list(BAD_CHOICES))
        yield [rng.choice(["predict", "simulate"]), flag, rng.choice(BAD_CHOICES[flag])]
    for _ in range(30):   # inconsistent combinations
        yield rng.choice([
            ["predict", "--kappa", str(rng.uniform(1.01, 5))],
            ["predict", "--projection", "identity", "--kappa", str(rng.uniform(0.01, 0.99))],
            ["predict", "--lam", "0", "--delta", str(rng.uniform(0.1, 0.99)), "--lam-trak", "1"],
            ["predict", "--family", "logistic", "--lam", "0", "--delta", str(rng.uniform(1.1, 2.2)),
             "--lam-trak", "1"],
            ["simulate", "--p", "3", "--delta", "0.5"],
            ["simulate", "--top-m", "100000"],
            ["simulate", "--kappa", "1", "--delta", "0.8"],
            ["predict", "--n-proj", "2", "--projection", "identity", "--kappa", "1"],
            ["predict", "--family", "poisson", "--gamma", str(rng.uniform(1.6, 9))],
        ])
    for _ in range(40):   # unknown flags / subcommands / missing arguments
        yield rng.choice([
            ["predict", f"--{rng.choice(['foo', 'deltaa', 'p', 'n', 'k'])}", "1"],
            [rng.choice(["frob", "simulat", "PREDICT", "sweeps"])],
            ["sweep"], ["compare"],
            ["simulate", "--p"],
            ["figures", "--preset", rng.choice(["fast", "", "Paper"])],
            ["figures", "--only", rng.choice(["fig_nope", "corr", ""])],
            ["compare", str(tmp_path), "--metrics", rng.choice(["top_overlap", "auc", "pearson,x"])],
            ["compare", str(tmp_path), "--n-se", "-1"],
            ["compare", str(tmp_path / "missing")],
        ])
    for _ in range(40):   # sweep specs: missing, malformed, invalid, unwritable output
        yield rng.choice([
            ["sweep", str(tmp_path / "missing.toml")],
            ["sweep", str(bad_spec)],
            ["sweep", str(unknown_key)],
            ["sweep", str(bad_grid)],
            ["sweep", str(not_a_list)],
            ["sweep", str(tmp_path)],
            ["sweep", str(good_spec), "--preset", "nope"],
            ["sweep", str(good_spec), "--max-points", "-2"],
            ["sweep", str(good_spec), "--out", str(blocker / "sub")],
            ["sweep", str(good_spec), "--out", str(blocker)],
        ])


def test_two_hundred_generated_invalid_invocations(tmp_path, capsys):
    rng = random.Random(1234)
    cases = list(_invalid_invocations(rng, tmp_path))
    assert len(cases) >= 200
    for argv in cases:
        code = main(argv)
        out = capsys.readouterr()
        err = out.err.strip()
        assert code == 2, (argv, code, err)
        assert err and "\n" not in err and "Traceback" not in err, (argv, err)
        assert not out.out.strip() or argv in (["sweep"], ["compare"]), (argv, out.out)


@pytest.mark.parametrize("cmd", ["predict", "simulate", "sweep", "compare", "figures"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
