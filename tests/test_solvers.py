"""The shared solver pieces of theory.solvers and theory.shapes: the bucket rule, conjugate
gradients, the damped Newton minimizer (dense and CG strategies) and the trust-region Newton."""

import numpy as np
import pytest

from theory.shapes import bucket


@pytest.mark.parametrize("per_octave", [1, 2, 4, 8])
def test_bucket_is_the_smallest_allowed_size_at_least_n(per_octave):
    """bucket(n) >= n, padding below n / per_octave, monotone, idempotent, and every size it
    returns is m 2^e with m in [per_octave, 2 per_octave) (or below per_octave)."""
    sizes = [bucket(n, per_octave=per_octave) for n in range(0, 5000)]
    for n, b in enumerate(sizes):
        assert n <= b <= n + n / per_octave
        assert bucket(b, per_octave=per_octave) == b
        if b >= per_octave:
            m = b >> (b.bit_length() - per_octave.bit_length())
            assert per_octave <= m < 2 * per_octave and m << (b.bit_length() - per_octave.bit_length()) == b
    assert all(a <= b for a, b in zip(sizes, sizes[1:]))
    assert len(set(sizes[1025:2049])) == per_octave       # per_octave sizes in the octave (1024, 2048]


def test_bucket_minimum_and_powers_of_two():
    assert [bucket(n, minimum=8, per_octave=1) for n in (0, 1, 8, 9, 16, 17, 1000)] == [8, 8, 8, 16, 16, 32, 1024]
    assert bucket(16385, minimum=1 << 14) == 20480 and bucket(3, minimum=1 << 14) == 1 << 14
    with pytest.raises(ValueError):
        bucket(10, per_octave=3)
