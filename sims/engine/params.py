"""The simulation's own parameters, beyond the model's (`theory.params.MODEL_PARAMS`).

The CLI options of `trak-sim simulate`, the sweep keys and the store's columns derive from these
two lists (validation: `sims.engine.simulate.validate_sim`). A light module: the CLI reads it
without importing the engine.
"""

from theory.params import MODEL_KEYS, MODEL_PARAMS, Param

DESIGNS = ("gaussian", "rademacher", "student_t")

SIM_PARAMS = (
    Param("p", int, 200, "number of features; n = round(delta p)"),
    Param("design", str, "gaussian", "entries of the features (covariance I/p): Gaussian, +-1, or Student-t "
          "with 5 d.f. (heavy tails); the theory assumes Gaussian", DESIGNS),
    Param("variants", bool, False, "also the corrected TRAK estimators: trak_w (Hessian-weighted Gram), "
          "trak_lev (leave-one-out factor in the projected space), trak_wlev (both)"),
    Param("lds_subsets", int, 0, "J > 0 adds the linear datamodeling score over J random half-subsets "
          "(J refits per replicate; 0 = off)"),
    Param("n_test", int, 20, "test points per replicate"),
    Param("reps", int, 2, "independent replicates"),
    Param("seed", int, 0, "integer seed of all randomness"),
    Param("top_m", int, None, "m of the top-m overlap (default: 5%% of n)"),
    Param("tol", float, 1e-10, "relative gradient tolerance of every exact-LOO refit"),
)
SIM_KEYS = tuple(p.name for p in SIM_PARAMS)
SWEEP_KEYS = ("family", "p") + MODEL_KEYS[1:] + SIM_KEYS[1:]


def parameters_markdown() -> str:
    """docs/parameters.md, generated from the two declarations (`python -m sims.engine.params`)."""
    def table(params):
        rows = ["| parameter (Python / CLI) | default | choices | meaning |", "|---|---|---|---|"]
        for prm in params:
            choices = ", ".join(map(str, prm.choices)) if prm.choices else ""
            rows.append(f"| `{prm.name}` / `{prm.option}` | `{prm.default!r}` | {choices} | "
                        f"{prm.help.replace('%%', '%')} |")
        return "\n".join(rows)

    return "\n".join([
        "# Parameters",
        "",
        "Generated from `theory.params.MODEL_PARAMS` and `sims.engine.params.SIM_PARAMS` by",
        "`.venv/bin/python -m sims.engine.params > docs/parameters.md` (a test checks it is current). The",
        "same declarations give the keyword arguments of `theory.predict`, `theory.validate_model`,",
        "`sims.simulate` and `sims.validate_sim`, the CLI options of `trak-sim predict` and `simulate`,",
        "the sweep keys and the store's columns. Notation: docs/conventions.md.",
        "",
        "## The model (`theory.predict` and `sims.simulate`)",
        "",
        table(MODEL_PARAMS),
        "",
        "## The simulation (`sims.simulate` only)",
        "",
        table(SIM_PARAMS),
        "",
    ])


if __name__ == "__main__":
    print(parameters_markdown(), end="")
