"""Compiled programs kept on disk whole, so that a fresh process skips tracing and lowering.

The persistent compilation cache (`compilecache.jaxcache`) saves XLA's compilation, but a fresh process
still traces each Python function and lowers it to StableHLO before it can look the program up:
about 1 s of a `trak-sim predict` call. `cached_jit(fn, static_argnames)` is `jax.jit` that also
keeps the compiled executable itself (`jax.experimental.serialize_executable`) in a file keyed by

    the function (module, name, defaults and what its closure holds), the values of its static
    arguments, the pytree structure, shapes, dtypes and weak types of the others, a digest of the source of the packages it can
    call (theory, and sims for functions defined there), the JAX and jaxlib versions, the
    backend and its devices, the default device, x64 mode and XLA_FLAGS,

so a later process with the same key loads the executable and calls it directly. The executable
is the program `jax.jit` would build, so results are bit-identical; any problem with an entry
(unreadable, stale, a call it rejects) falls back to `jax.jit`. Called with tracers (inside
another jit or vmap), the function is plain `jax.jit`.

It is on exactly when `compilecache.jaxcache.enable_compilation_cache()` turned the persistent cache on
(the entry points do; the API leaves JAX as it is), in the folder `<cache>/aot`, and off with
TRAK_SIM_JAX_CACHE=0. Entries are written to a temporary file and renamed into place, so
concurrent processes never read a partial entry; the folder is held under MAX_SIZE bytes by
removing the least recently written entries. Only functions whose shapes are fixed by the
quadrature (not by the data) use it, so the number of entries stays small.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import pickle
import sys
import tempfile
from pathlib import Path

import jax

MAX_SIZE = 256 << 20          # bytes of serialized executables kept
_FOLDER: list[Path | None] = [None]


def set_folder(folder: Path | None) -> None:
    """Where executables are kept (None: nowhere, `cached_jit` is plain `jax.jit`)."""
    _FOLDER[0] = None if folder is None or not _prepare_runtime() else Path(folder)


def _prepare_runtime() -> bool:
    """Make a loaded executable safe to run without its lowering: on CPU, jaxlib binds its LAPACK
    kernels (the custom calls of Cholesky, LU, eigh) to scipy's LAPACK when the first linear-
    algebra operation is lowered, so an executable loaded before that would call null pointers.
    Returns False (keep executables off) when that cannot be ensured."""
    try:
        from jaxlib import lapack

        lapack._lapack.initialize()
        return True
    except Exception:
        return False


@functools.lru_cache(maxsize=None)
def _source_digest(package: str) -> str:
    """sha256 of the source files of `package` (paths and contents)."""
    root = Path(sys.modules[package].__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _environment() -> str:
    import jaxlib

    devices = ",".join(f"{d.platform}:{d.device_kind}" for d in jax.devices())
    return "|".join((jax.__version__, jaxlib.__version__, jax.default_backend(), devices,
                     str(bool(jax.config.jax_enable_x64)), os.environ.get("XLA_FLAGS", "")))


def _describe(obj, depth: int = 0) -> str:
    """What a function computes beyond its source file: its name, its defaults and what its
    closure holds (two closures of one factory, e.g. the binary response law of logistic and of
    probit, differ only there). Anything without a stable description gives a per-process one
    (an address), which can only miss, never collide."""
    if callable(obj) and hasattr(obj, "__qualname__") and depth < 8:
        cells = getattr(obj, "__closure__", None) or ()
        parts = [f"{getattr(obj, '__module__', '')}.{obj.__qualname__}",
                 repr(getattr(obj, "__defaults__", None)), repr(getattr(obj, "__kwdefaults__", None))]
        parts += [_describe(c.cell_contents, depth + 1) for c in cells]
        return "(" + ",".join(parts) + ")"
    return repr(obj) if depth < 8 else f"{type(obj)}@{id(obj)}"


def _aval(leaf) -> tuple:
    t = jax.typeof(leaf)
    return (tuple(t.shape), str(t.dtype), bool(getattr(t, "weak_type", False)))


class _CachedJit:
    def __init__(self, fn, static_argnames):
        self._jit = jax.jit(fn, static_argnames=static_argnames)
        self._static = frozenset(static_argnames)
        self._signature = inspect.signature(fn)
        self._name = f"{fn.__module__}.{fn.__qualname__}"
        self._identity = _describe(fn)
        self._packages = tuple(sorted({"theory", fn.__module__.split(".")[0]}))
        self._loaded: dict = {}
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        folder = _FOLDER[0]
        if folder is None:
            return self._jit(*args, **kwargs)
        try:                                     # every argument by name: one key per call
            kwargs = dict(self._signature.bind(*args, **kwargs).arguments)
        except TypeError:
            return self._jit(*args, **kwargs)    # let jax.jit report the bad call
        dynamic = {k: v for k, v in kwargs.items() if k not in self._static}
        leaves, tree = jax.tree_util.tree_flatten(dynamic)
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return self._jit(**kwargs)
        static = tuple(sorted((k, v) for k, v in kwargs.items() if k in self._static))
        signature = (tree, tuple(_aval(leaf) for leaf in leaves), static, str(jax.config.jax_default_device))
        compiled = self._loaded.get(signature)
        fresh = compiled is None
        if fresh:
            compiled = self._loaded[signature] = self._load_or_compile(folder, signature, kwargs)
        if compiled is not False:
            try:
                out = compiled(**dynamic)
                if fresh:                        # errors of a broken entry surface at dispatch
                    jax.block_until_ready(out)   # ("Function ... not found"): catch them here
                return out
            except (TypeError, ValueError, jax.errors.JaxRuntimeError):
                self._loaded[signature] = False  # rejected the arguments, or a broken entry:
                self._path(folder, signature).unlink(missing_ok=True)   # jax.jit decides
        return self._jit(**kwargs)

    def _key(self, signature) -> str:
        tree, avals, static, device = signature
        text = "\n".join((self._identity, repr(static), str(tree), repr(avals), _environment(), device,
                          *(_source_digest(p) for p in self._packages)))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _path(self, folder, signature) -> Path:
        return folder / f"{self._name.rsplit('.', 1)[-1].lstrip('_')}-{self._key(signature)}.bin"

    def _load_or_compile(self, folder, signature, kwargs):
        from jax.experimental.serialize_executable import deserialize_and_load, serialize

        path = self._path(folder, signature)
        try:
            payload, in_tree, out_tree = pickle.loads(path.read_bytes())
            return deserialize_and_load(payload, in_tree, out_tree)
        except FileNotFoundError:
            pass
        except Exception:                        # unreadable or stale entry: rebuild it
            path.unlink(missing_ok=True)
        try:
            compiled = _compile_fresh(self._jit.lower(**kwargs))
        except Exception:
            return False                         # let jax.jit raise its own error on the call
        try:
            _write(path, pickle.dumps(serialize(compiled)))
        except Exception:                        # not serializable, or the folder not writable
            pass
        return compiled


def _compile_fresh(lowered):
    """Compile without the persistent compilation cache: an executable that XLA:CPU loaded from
    that cache serializes without its generated kernels (the copy fails with "Function ... not
    found"), so the executable to keep must come from a real compilation."""
    from jax._src import config

    with config.enable_compilation_cache(False):
        return lowered.compile()


def _write(path: Path, data: bytes) -> None:
    """Atomic write (temporary file + rename), then trim the folder to MAX_SIZE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    entries = sorted(((e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(path.parent)
                      if e.name.endswith(".bin")), reverse=True)
    total = 0
    for _, size, name in entries:
        total += size
        if total > MAX_SIZE:
            Path(name).unlink(missing_ok=True)


def cached_jit(fn=None, *, static_argnames=()):
    """`jax.jit(fn, static_argnames=...)` whose compiled executables persist across processes
    (module docstring). Usable as `@cached_jit` or `@cached_jit(static_argnames=(...))`."""
    if fn is None:
        return lambda f: _CachedJit(f, tuple(static_argnames))
    return _CachedJit(fn, tuple(static_argnames))
