"""The persistent compilation cache (`compilecache.jaxcache`): $TRAK_SIM_JAX_CACHE moves it or turns
it off, the command line uses it, and a JAX version gets its own folder. Each check runs in a
fresh process (the cache is process-wide JAX configuration), without the test session's
JAX_COMPILATION_CACHE_DIR, which would take precedence."""

import os
import subprocess
import sys

import jax
import jaxlib

SNIPPET = """
import jax
from compilecache.jaxcache import cache_dir, enable_compilation_cache
folder = enable_compilation_cache()
print(folder, cache_dir(), sep="\\n")
print(float(jax.jit(lambda x: x * 3.0 + 1.0)(2.0)))
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.pop("TRAK_SIM_JAX_CACHE", None)
    env.update(extra)
    return env


def _run(args, env):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=True)


def _entries(folder):
    return [f for f in folder.rglob("*") if f.is_file() and "cache" in f.name]


def test_env_var_moves_the_cache_and_the_version_names_the_folder(tmp_path):
    out = _run([sys.executable, "-c", SNIPPET], _env(TRAK_SIM_JAX_CACHE=str(tmp_path / "c"))).stdout.split("\n")
    expected = tmp_path / "c" / f"jax-{jax.__version__}-{jaxlib.__version__}"
    assert out[0] == out[1] == str(expected) and float(out[2]) == 7.0
    assert _entries(expected), "a compiled program was not written to the cache"


def test_default_folder_is_per_user_under_xdg_cache_home(tmp_path):
    out = _run([sys.executable, "-c", SNIPPET], _env(XDG_CACHE_HOME=str(tmp_path))).stdout.split("\n")
    assert out[0] == str(tmp_path / "trak-sim" / f"jax-{jax.__version__}-{jaxlib.__version__}")
    assert _entries(tmp_path)


def test_env_var_zero_or_off_disables_it(tmp_path):
    for value in ("0", "off", "OFF"):
        out = _run([sys.executable, "-c", SNIPPET],
                   _env(TRAK_SIM_JAX_CACHE=value, XDG_CACHE_HOME=str(tmp_path))).stdout.split("\n")
        assert out[0] == out[1] == "None" and float(out[2]) == 7.0
    assert not list(tmp_path.rglob("*"))


def test_jax_own_setting_wins(tmp_path):
    env = _env(TRAK_SIM_JAX_CACHE=str(tmp_path / "ours"), JAX_COMPILATION_CACHE_DIR=str(tmp_path / "theirs"))
    out = _run([sys.executable, "-c", SNIPPET], env).stdout.split("\n")
    assert out[0] == str(tmp_path / "theirs") and not (tmp_path / "ours").exists()


def test_the_command_line_fills_and_reuses_the_cache(tmp_path):
    env = _env(TRAK_SIM_JAX_CACHE=str(tmp_path))
    cmd = [sys.executable, "-m", "sims.cli", "predict", "--family", "gaussian", "--json"]
    first = _run(cmd, env).stdout
    entries = _entries(tmp_path)
    assert entries
    second = _run(cmd, env).stdout
    assert second == first                       # same numbers from loaded programs
    assert len(_entries(tmp_path)) == len(entries)   # nothing compiled anew
