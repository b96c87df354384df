"""TRAK on a trained network: a small perceptron on scikit-learn's digits, trained to a tight
optimum, its exact leave-one-out, the linearized model's, and the influence estimators at theta_hat
(docs/network.md).

    model       the perceptron as pure functions of a flat parameter vector
    train       L-BFGS warm-up + trust-region Newton with the exact Hessian
    loo         exact network LOO of every training point, warm-started at theta_hat
    estimators  IF / NS with exact and Gauss–Newton Hessians, TRAK and its variants on phi
    experiment  `run_network(...)`: everything scored against network and linearized LOO
"""

from .experiment import run_network

__all__ = ["run_network"]
