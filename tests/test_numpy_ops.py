"""Recorded operators, methods and crk's own numpy-like functions: Taylor tests of all four
derivative kinds, with replicated and distributed controls, and — under mpirun — equality with
the serial result and bit-identical replicated values on every rank (see tests/taylor_cases.py).
numpy's ufuncs and functions are walked in tests/numpy_api/test_dispatch.py.
"""
import numpy as np
import pytest

import crk
from crk.parallel.collective import sum_over_ranks
from numpy_cases import OPERATOR_CASES
from taylor_cases import check_case, runs


@pytest.mark.mpi
@pytest.mark.parametrize("case,distributed", runs(OPERATOR_CASES))
def test_operation(case, distributed, comm, split, assert_replicated):
    check_case(case, distributed, comm, split, assert_replicated)


@pytest.mark.mpi
def test_global_reductions_sum_over_ranks(comm, split):
    """sum/mean/dot/norm of a distributed array are global; the count in mean too."""
    n = 11
    full = np.arange(n, dtype=float) + 1.0
    x = crk.array(full[split(n)], comm=comm, distributed=True)
    assert float(crk.sum(x)) == pytest.approx(full.sum(), rel=1e-14)
    assert float(crk.mean(x)) == pytest.approx(full.mean(), rel=1e-14)
    assert float(crk.dot(x, x)) == pytest.approx(full @ full, rel=1e-14)
    assert float(crk.norm(x)) == pytest.approx(np.linalg.norm(full), rel=1e-14)
    assert x.global_shape() == (n,)
    local = crk.sum(x.reshape(-1, 1), axis=1)
    assert local.distributed and local.shape == x.shape


@pytest.mark.mpi
def test_sum_over_ranks_is_deterministic(comm, assert_replicated):
    rng = np.random.default_rng(comm.rank)
    small, big = rng.standard_normal(10), rng.standard_normal(10000)
    for v in (small, big, float(small[0])):
        assert_replicated(sum_over_ranks(v, comm))
