"""Sweep store: the table holds exactly the spec's points, invalid point files are recomputed,
units of equal hash run once, and specs that define nothing to simulate are refused."""

import json
from pathlib import Path

import pytest

from sims.cli import main
from sims.runs.store import Store, read_table
from sims.runs.sweep import load_spec, parse_spec, run_sweep, units
from theory.errors import InvalidParameterError

ROOT = Path(__file__).resolve().parents[1]
BASE = {"family": "logistic", "p": 16, "n_test": 2, "reps": 1, "delta": 2.0}


def _spec(grid=None, **defaults):
    return parse_spec({"name": "t", "defaults": {**BASE, **defaults}, "grid": grid or {}})


def _kappas(table):
    return sorted({r["kappa"] for r in read_table(table)})


def test_table_holds_only_the_points_of_the_spec_being_run(tmp_path):
    first = run_sweep(_spec({"kappa": [0.25, 0.5]}), tmp_path, progress=False)
    assert first.computed == 2 and _kappas(first.table) == [0.25, 0.5]
    second = run_sweep(_spec({"kappa": [0.25]}), tmp_path, progress=False)
    assert (second.total, second.cached, second.computed) == (1, 1, 0)
    assert _kappas(second.table) == [0.25]                         # the old configuration is gone
    assert len(list((tmp_path / "points").glob("*.json"))) == 2    # but its point stays as cache
    again = run_sweep(_spec({"kappa": [0.25, 0.5]}), tmp_path, progress=False)
    assert again.computed == 0 and _kappas(again.table) == [0.25, 0.5]


def test_invalid_point_files_count_as_absent_and_are_recomputed(tmp_path):
    spec = _spec(reps=3)
    run_sweep(spec, tmp_path, progress=False)
    store = Store(tmp_path)
    (h0, h1, h2) = [h for _, _, h in units(spec)]
    good = json.loads(store.path(h0).read_text())
    store.path(h0).write_text('{"hash": "trunc')                   # unreadable
    old = dict(good, hash=h1)
    del old["meta"]                                                # an older schema
    store.path(h1).write_text(json.dumps(old))
    store.path(h2).write_bytes(b"\xff\xfe")                        # not even text
    assert not store.has(h0) and not store.has(h1) and not store.has(h2)
    summary = run_sweep(spec, tmp_path, progress=False)
    assert (summary.total, summary.cached, summary.computed) == (3, 0, 3)
    assert all(store.has(h) for h in (h0, h1, h2))                 # atomically overwritten
    assert sorted({r["rep"] for r in read_table(summary.table)}) == [0, 1, 2]


def test_table_skips_records_without_the_current_schema_with_a_warning(tmp_path, capsys):
    spec = _spec(reps=2)
    run_sweep(spec, tmp_path, progress=False)
    store = Store(tmp_path)
    h0 = units(spec)[0][2]
    rec = json.loads(store.path(h0).read_text())
    del rec["config"]["design"]
    store.path(h0).write_text(json.dumps(rec))
    capsys.readouterr()
    summary = run_sweep(spec, tmp_path, progress=False, max_units=0)   # nothing recomputed
    err = capsys.readouterr().err.strip()
    assert summary.computed == 0
    assert err.count("\n") == 0 and "skipping point file" in err and "design" in err
    assert {r["rep"] for r in read_table(summary.table)} == {1}
    store.write_table("t")                                          # the whole-folder table, too
    assert {r["rep"] for r in read_table(tmp_path / "table.csv")} == {1}


def test_stale_temporary_files_are_removed_at_the_start_of_a_run(tmp_path):
    (tmp_path / "points").mkdir()
    stale = [tmp_path / ".table.csv.abc123.tmp", tmp_path / "points" / ".x.json.abc.tmp"]
    for f in stale:
        f.write_text("partial")
    run_sweep(_spec(), tmp_path, progress=False, max_units=0)
    assert not any(f.exists() for f in stale)
    assert (tmp_path / "table.csv").exists()


def test_units_of_equal_hash_run_once(tmp_path):
    spec = _spec({"reps": [1, 2]})
    assert len(spec.configs) == 2 and len(units(spec)) == 2        # rep 0 is shared
    summary = run_sweep(spec, tmp_path, progress=False)
    assert (summary.total, summary.cached, summary.computed) == (2, 0, 2)
    assert len(list((tmp_path / "points").glob("*.json"))) == 2
    again = run_sweep(spec, tmp_path, progress=False)
    assert (again.total, again.cached, again.computed) == (2, 2, 0)


def test_spec_without_anything_to_simulate_is_refused(tmp_path, capsys):
    with pytest.raises(InvalidParameterError, match="nothing to simulate"):
        load_spec(ROOT / "figures" / "specs" / "fig_real.toml", preset="quick")
    for raw in ({}, {"name": "x", "description": "d"}, {"grid": {}, "defaults": {}},
                {"presets": {"quick": {"p": 20}}}):
        with pytest.raises(InvalidParameterError, match="nothing to simulate"):
            parse_spec(raw, preset="quick" if "presets" in raw else None)
    assert main(["sweep", str(ROOT / "figures" / "specs" / "fig_real.toml"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing to simulate" in err and "figure" in err and "\n" not in err
    assert not (tmp_path / "points").exists()
    # a spec with [defaults] only is one configuration (figures/specs/fig_scatter.toml)
    assert len(load_spec(ROOT / "figures" / "specs" / "fig_scatter.toml", preset="quick").configs) == 1


def test_preset_that_is_not_a_table_says_so():
    with pytest.raises(InvalidParameterError) as exc:
        parse_spec({"defaults": BASE, "presets": {"quick": 3}}, preset="quick")
    assert "must be a table" in str(exc.value) and "not defined" not in str(exc.value)
    with pytest.raises(InvalidParameterError, match="not defined"):
        parse_spec({"defaults": BASE, "presets": {"quick": {"p": 20}}}, preset="paper")
