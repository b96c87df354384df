"""The one rounding rule for array sizes: sizes in a few buckets share compiled programs.

A jit-compiled function is compiled once per input shape, so arrays whose size depends on the
data (quadrature grids, spectra, curves, random draws) are padded up to a bucket, with entries
that change no result (zero weights, zero eigenvalues, discarded tails).
"""

from __future__ import annotations


def bucket(n: int, *, minimum: int = 0, per_octave: int = 4) -> int:
    """The smallest size m 2^e >= n with m in [per_octave, 2 per_octave) (per_octave a power of 2),
    and at least `minimum`: per_octave sizes per octave, padding below n / per_octave (n itself
    when n < per_octave). per_octave = 1 gives the next power of two."""
    n = int(n)
    if per_octave < 1 or per_octave & (per_octave - 1):
        raise ValueError(f"per_octave must be a power of 2, got {per_octave}.")
    step = 1 << max(n.bit_length() - per_octave.bit_length(), 0)
    return max(int(minimum), -(-n // step) * step)
