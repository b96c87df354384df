"""Simulation engine: exact LOO, ALO (Newton step), IF and TRAK for ridge GLMs, in JAX."""

from .engine.simulate import (ESTIMATORS, VARIANTS, SimParams, aggregate, run_replicate,  # noqa: E402
                       simulate, validate_sim)

__all__ = ["ESTIMATORS", "VARIANTS", "SimParams", "aggregate", "run_replicate", "simulate", "validate_sim"]
