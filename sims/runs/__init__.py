"""Orchestration around the engine: sweeps of many configurations, their resumable store, the
theory-versus-simulation comparison, and real-data runs.

    sweep    TOML spec -> cached, resumable units of work -> tidy table
    store    content-hashed point files and the atomic table
    compare  sweep table joined with `theory.predict`, with tolerances
    real     exact LOO on subsamples of real data sets against the theory at their spectrum
"""
