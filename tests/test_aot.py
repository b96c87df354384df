"""compilecache.aot: whole executables kept on disk give the same numbers as jax.jit, and never the
wrong program (closures of one factory, changed shapes, broken entries)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compilecache import aot
from theory.numerics import enable_float64

enable_float64()


@pytest.fixture
def folder(tmp_path):
    previous = aot._FOLDER[0]
    aot.set_folder(tmp_path / "aot")
    yield tmp_path / "aot"
    aot._FOLDER[0] = previous


def _scaled(fn):
    def law(x, y, *, k):
        return {"v": fn(x) * k + y, "s": (jnp.sum(x),)}
    return law


def _entries(folder):
    return sorted(p.name for p in folder.glob("*.bin")) if folder.exists() else []


def test_loaded_executable_matches_jit(folder):
    law = _scaled(jnp.sin)
    x, y = jnp.linspace(0.0, 1.0, 7), 2.0
    expected = jax.jit(law, static_argnames=("k",))(x, y, k=3)
    first = aot.cached_jit(law, static_argnames=("k",))(x, y, k=3)
    assert len(_entries(folder)) == 1
    again = aot.cached_jit(law, static_argnames=("k",))      # a fresh object: loads from disk
    loaded = again(x, y, k=3)
    for out in (first, loaded):
        np.testing.assert_array_equal(out["v"], expected["v"])
        np.testing.assert_array_equal(out["s"][0], expected["s"][0])
    assert again._loaded and all(c is not False for c in again._loaded.values())


def test_closures_of_one_factory_do_not_collide(folder):
    x = jnp.linspace(-1.0, 1.0, 5)
    sin_law = aot.cached_jit(_scaled(jnp.sin), static_argnames=("k",))
    cos_law = aot.cached_jit(_scaled(jnp.cos), static_argnames=("k",))
    np.testing.assert_array_equal(sin_law(x, 0.0, k=1)["v"], jnp.sin(x))
    np.testing.assert_array_equal(cos_law(x, 0.0, k=1)["v"], jnp.cos(x))
    assert len(_entries(folder)) == 2


def test_new_shapes_and_statics_are_new_entries(folder):
    law = aot.cached_jit(_scaled(jnp.sin), static_argnames=("k",))
    law(jnp.ones(3), 1.0, k=1)
    law(jnp.ones(4), 1.0, k=1)
    law(jnp.ones(4), 1.0, k=2)
    out = law(jnp.ones(4), jnp.ones(4), k=2)                   # y: a weak scalar, then an array
    assert out["v"].shape == (4,)
    assert len(_entries(folder)) == 4


def test_broken_entry_falls_back_and_is_rewritten(folder):
    law = _scaled(jnp.exp)
    x = jnp.arange(3.0)
    aot.cached_jit(law, static_argnames=("k",))(x, 1.0, k=2)
    (entry,) = folder.glob("*.bin")
    entry.write_bytes(b"not an executable")
    out = aot.cached_jit(law, static_argnames=("k",))(x, 1.0, k=2)
    np.testing.assert_array_equal(out["v"], jnp.exp(x) * 2 + 1.0)
    assert entry.read_bytes() != b"not an executable"


def test_inside_jit_and_vmap_it_is_plain_jit(folder):
    law = aot.cached_jit(_scaled(jnp.sin), static_argnames=("k",))
    xs = jnp.linspace(0.0, 1.0, 6).reshape(2, 3)
    batched = jax.vmap(lambda x: law(x, 0.5, k=2)["v"])(xs)
    np.testing.assert_array_equal(batched, jnp.sin(xs) * 2 + 0.5)
    assert _entries(folder) == []


def test_off_without_folder():
    previous = aot._FOLDER[0]
    aot.set_folder(None)
    try:
        law = aot.cached_jit(_scaled(jnp.sin), static_argnames=("k",))
        np.testing.assert_array_equal(law(jnp.ones(2), 0.0, k=1)["v"], jnp.sin(jnp.ones(2)))
        assert law._loaded == {}
    finally:
        aot._FOLDER[0] = previous


def _predict_json(args, cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["TRAK_SIM_JAX_CACHE"] = str(cache)
    out = subprocess.run([sys.executable, "-m", "sims.cli", "predict", "--json", *args], env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_fresh_processes_give_bit_identical_predictions(tmp_path):
    """The command line fills the folder in one process and loads it in the next: the same
    numbers as with the cache off (probit, whose response law is a closure of the same factory
    as logistic's, under general covariance)."""
    args = ["--family", "probit", "--covariance", "ar1", "--cov-param", "0.3", "--p", "200"]
    off = _predict_json(args, "0")
    filled = _predict_json(args, tmp_path)
    entries = sorted(tmp_path.glob("*/aot/*.bin"))
    loaded = _predict_json(args, tmp_path)
    assert filled == off and loaded == off
    assert len(entries) >= 4
    # the next process finds every program under the same key (the static Family is keyed by its
    # repr, its name): no new entry
    assert sorted(tmp_path.glob("*/aot/*.bin")) == entries
