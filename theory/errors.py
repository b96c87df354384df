"""Named errors shared by `theory` and `sims`.

Every user-facing failure is one of these, with a one-sentence message:

- `InvalidParameterError` (also a `ValueError`): an argument is out of range or of the wrong type.
- `EstimatorDoesNotExistError`: the regularized M-estimator (or its limit) does not exist or is not
  unique for these parameters, e.g. logistic regression with ``lam = 0`` on separable data.
- `NotConvergedError`: an iterative solver (Newton fit, exact-LOO iteration, fixed point) stopped
  without reaching its tolerance.
"""


class TrakSimError(Exception):
    """Base class of every error raised on purpose by this project."""


class InvalidParameterError(TrakSimError, ValueError):
    """An argument is out of its valid range or of the wrong type."""


class EstimatorDoesNotExistError(TrakSimError, ArithmeticError):
    """The estimator (or its proportional limit) does not exist or is not unique."""


class NotConvergedError(TrakSimError, ArithmeticError):
    """An iterative solver stopped before reaching its tolerance."""
