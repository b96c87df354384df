"""The simulation engine: data -> Newton fit -> exact LOO and the influence estimators -> metrics.

Pure computation on one data set; no files, no command line (those are in `sims.runs` and
`sims.cli`).

    data        synthetic designs and responses (`make_data`)
    fit         damped-Newton ridge GLM fit (`newton_fit`)
    loo         exact leave-one-out for every training point (`exact_loo`)
    estimators  IF, NS (ALO), TRAK and its corrected variants, each a (T, n) matrix
    metrics     Pearson, Spearman, relative error, scale, top-m overlap against LOO
    lds         linear datamodeling score over random subsets
    simulate    one replicate end to end, and `simulate` over replicates
"""
