"""The figures package: registry, output folder, and byte-for-byte reproducible files."""

import hashlib

import pytest

import matplotlib

matplotlib.use("Agg")

import figures  # noqa: E402
from figures import _common  # noqa: E402


def test_registry_lists_every_figure_module_with_its_spec():
    names = figures.names()
    assert "fig_scatter" in names and all(n.startswith("fig_") for n in names)
    for name in names:
        assert callable(figures.load(name).make)
        assert (_common.SPECS / f"{name}.toml").is_file(), name


def _draw_and_save(out):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 2], label="line")
    ax.legend()
    _common.OUTPUT["figures"] = out
    try:
        return _common.save(fig, "fig_test")
    finally:
        _common.OUTPUT["figures"] = None


def test_saved_png_and_pdf_are_byte_reproducible(tmp_path):
    first = _draw_and_save(tmp_path / "a")
    second = _draw_and_save(tmp_path / "b")
    digest = lambda path: hashlib.sha256(open(path, "rb").read()).hexdigest()  # noqa: E731
    assert [p.rsplit(".", 1)[1] for p in first] == ["png", "pdf"]
    assert [digest(p) for p in first] == [digest(p) for p in second]
    assert b"CreationDate" not in open(first[1], "rb").read()


def test_theory_cache_returns_exactly_the_fresh_prediction(tmp_path, monkeypatch):
    """`_common.theory` memoizes predictions on disk (a rerun of `make figures` recomputes none):
    the cached value equals the fresh one bit for bit, arrays keep their dtype, other arguments
    miss the cache, and a corrupt entry is recomputed."""
    import numpy as np

    import theory

    monkeypatch.setitem(_common.OUTPUT, "results", tmp_path)
    kw = dict(family="gaussian", delta=2.0, kappa=0.5, lam=0.1)
    fresh = theory.predict(**kw)
    first = _common.theory("predict", **kw)
    files = list((tmp_path / "theory").glob("*.json"))
    assert len(files) == 1
    assert _common.theory("predict", **kw) == first == fresh
    _common.theory("predict", **{**kw, "kappa": 0.25})
    assert len(list((tmp_path / "theory").glob("*.json"))) == 2
    files[0].write_text("{not json")
    assert _common.theory("predict", **kw) == fresh

    curve = _common.theory("predict_curve", "kappa", [0.2, 0.4], **{k: v for k, v in kw.items() if k != "kappa"})
    again = _common.theory("predict_curve", "kappa", [0.2, 0.4], **{k: v for k, v in kw.items() if k != "kappa"})
    for e, row in curve["estimators"].items():
        for m, v in row.items():
            assert again["estimators"][e][m].dtype == v.dtype and np.array_equal(again["estimators"][e][m], v)
    s = np.linspace(0.5, 1.5, 20)
    a = _common.theory("predict_spectrum", s, None, **kw)
    b = _common.theory("predict_spectrum", s * 1.01, None, **kw)      # other array content: a new entry
    assert a == theory.predict_spectrum(s, None, **kw) and b != a


def test_parallel_drawing_starts_with_the_costliest_figure():
    import figures

    order = figures.costliest_first(figures.names())
    assert sorted(order) == figures.names()
    costs = [float(getattr(figures.load(n), "COST", figures.DEFAULT_COST)) for n in order]
    assert costs == sorted(costs, reverse=True)
    assert order[0] == "fig_real"


def test_figures_jobs_must_be_positive(capsys):
    from sims.cli import main

    assert main(["figures", "--jobs", "0"]) == 2
    assert "--jobs must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_figures_drawn_in_parallel_equal_sequential(tmp_path):
    """Two workers write the same bytes as one process (their own results folders)."""
    import subprocess
    import sys

    names = ["fig_error_vs_corr", "fig_scatter"]
    for jobs in (1, 2):
        subprocess.run([sys.executable, "-m", "sims.cli", "figures", "--only", *names, "--jobs", str(jobs),
                        "--out", str(tmp_path / f"out{jobs}"), "--results", str(tmp_path / f"res{jobs}"),
                        "--no-progress"], check=True, capture_output=True)
    for name in names:
        for ext in ("png", "pdf"):
            a, b = (tmp_path / f"out{j}" / f"{name}.{ext}" for j in (1, 2))
            assert a.read_bytes() == b.read_bytes()


def test_a_figure_is_drawn_again_with_caches_off_when_a_cached_executable_lacks_a_kernel(tmp_path, monkeypatch):
    """XLA:CPU once ran an executable loaded from the shared cache without one of its kernels
    ("Function wrapped_broadcast not found", 3 workers, one cache): the figure is drawn again
    with the persistent cache and compilecache.aot off. Other runtime errors propagate."""
    import jax

    from compilecache import aot

    module = figures.load("fig_scatter")
    calls = []
    before = jax.config.jax_enable_compilation_cache, aot._FOLDER[0]

    def flaky(preset, progress=True):
        calls.append(jax.config.jax_enable_compilation_cache)
        if len(calls) == 1:
            raise jax.errors.JaxRuntimeError("INTERNAL: Function wrapped_broadcast not found (type id: 1)")
        return ["drawn"]

    monkeypatch.setattr(module, "make", flaky)
    monkeypatch.setenv("TRAK_SIM_JAX_CACHE", str(tmp_path / "jc"))
    try:
        with pytest.warns(RuntimeWarning, match="lacks a kernel"):
            assert figures.make("fig_scatter", out=tmp_path, results=tmp_path) == ["drawn"]
        assert calls == [True, False] and aot._FOLDER[0] is None
        monkeypatch.setattr(module, "make", lambda preset, progress=True: (_ for _ in ()).throw(
            jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory")))
        with pytest.raises(jax.errors.JaxRuntimeError, match="RESOURCE_EXHAUSTED"):
            figures.make("fig_scatter", out=tmp_path, results=tmp_path)
    finally:
        jax.config.update("jax_enable_compilation_cache", before[0])
        aot._FOLDER[0] = before[1]
