"""Two compilation tiers for the engine's kernels: small problems compile fast, large ones run fast.

From scratch, the simulations of a figure at the quick preset (n p up to ~10^5) spend most of
their time in XLA compiling one program per shape, not in running it. `tiered_jit` compiles a
call whose largest array argument has at most SMALL_ELEMENTS entries with XLA's backend
optimization off (`xla_backend_optimization_level=0`: about half the compilation time, the
elementwise parts slower) and, where this jaxlib has them, XLA:CPU's older elemental emitters
for fusions instead of the MLIR fusion emitters (`xla_cpu_use_fusion_emitters=false`: the
fit compiles in half the time again and 2.4x less CPU; a p = 400 replicate runs as fast, a
p = 100 one 20 ms slower), and a larger one with XLA's defaults (n = 2000, p = 1000: a replicate
runs 1.5x slower at level 0, so those stay on the default tier). The tier follows from the
shapes alone, so a given problem always gets the same program (same seed, same numbers); the two
tiers agree to rounding. Called with tracers (inside another jit), the function is inlined there.
"""

from __future__ import annotations

import functools

import jax

SMALL_ELEMENTS = 1 << 19
FAST_COMPILE = {"xla_backend_optimization_level": 0}
ELEMENTAL_FUSIONS = {"xla_cpu_use_fusion_emitters": False}    # an XLA:CPU option of recent jaxlibs


@functools.cache
def fast_compile_options() -> dict:
    """FAST_COMPILE, plus ELEMENTAL_FUSIONS when this jaxlib knows that option (probed once by
    compiling an empty program: an unknown option is an error at compilation)."""
    try:
        jax.jit(lambda x: x, compiler_options={**FAST_COMPILE, **ELEMENTAL_FUSIONS}).lower(0.0).compile()
    except Exception:                      # (jaxlib raises its own error types for unknown options)
        return dict(FAST_COMPILE)
    return {**FAST_COMPILE, **ELEMENTAL_FUSIONS}


def _largest(tree) -> int:
    return max((getattr(leaf, "size", 1) for leaf in jax.tree_util.tree_leaves(tree)), default=0)


def tiered_jit(fn=None, *, static_argnames=()):
    """`jax.jit(fn, static_argnames=...)` with the compilation tier chosen per call (module
    docstring). Usable as `@tiered_jit` or `@tiered_jit(static_argnames=(...))`."""
    if fn is None:
        return functools.partial(tiered_jit, static_argnames=static_argnames)
    static = frozenset(static_argnames)
    fast_run = jax.jit(fn, static_argnames=tuple(static))
    @functools.cache
    def fast_compile_tier():               # built at the first small call (after the probe)
        return jax.jit(fn, static_argnames=tuple(static), compiler_options=fast_compile_options())

    @functools.wraps(fn)
    def call(*args, **kwargs):
        dynamic = (args, {k: v for k, v in kwargs.items() if k not in static})
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(dynamic)):
            return fast_run(*args, **kwargs)
        return (fast_compile_tier() if _largest(dynamic) <= SMALL_ELEMENTS else fast_run)(*args, **kwargs)

    call.default_tier, call.fast_compile_tier = fast_run, fast_compile_tier
    return call
