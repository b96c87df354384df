"""Proportional-regime theory of IF, ALO (Newton step) and TRAK versus exact leave-one-out."""

from .errors import (EstimatorDoesNotExistError, InvalidParameterError,  # noqa: E402
                     NotConvergedError, TrakSimError)
from .families import FAMILIES, Family, get_family  # noqa: E402
from .numerics import enable_float64  # noqa: E402
from .prediction import METRICS, predict, predict_curve, predict_spectrum  # noqa: E402
from .conditional import ConditionalModel, predict_conditional  # noqa: E402

__all__ = ["EstimatorDoesNotExistError", "InvalidParameterError", "NotConvergedError",
           "TrakSimError", "enable_float64", "FAMILIES", "Family", "get_family", "METRICS", "predict", "predict_curve", "predict_spectrum",
           "ConditionalModel", "predict_conditional"]
