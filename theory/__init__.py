"""Proportional-regime theory of IF, ALO (Newton step) and TRAK versus exact leave-one-out."""

import jax

jax.config.update("jax_enable_x64", True)

from .errors import (EstimatorDoesNotExistError, InvalidParameterError,  # noqa: E402
                     NotConvergedError, TrakSimError)
from .families import FAMILIES, Family, get_family  # noqa: E402
from .prediction import METRICS, predict, predict_curve, predict_spectrum  # noqa: E402

__all__ = ["EstimatorDoesNotExistError", "InvalidParameterError", "NotConvergedError",
           "TrakSimError", "FAMILIES", "Family", "get_family", "METRICS", "predict", "predict_curve", "predict_spectrum"]
