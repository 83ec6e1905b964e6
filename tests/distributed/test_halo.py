"""Neighbour shifts along the distributed axis: np.roll, np.diff and u[1:] - u[:-1] give the
serial result (values, derivatives) on any rank count, with any shift."""
import numpy as np
import pytest

import crk

N = 10
VECTOR = np.linspace(-0.6, 1.4, N) ** 2
MATRIX = np.linspace(-0.9, 1.1, 3 * N).reshape(N, 3)

SHIFTS = [
    ("roll-1", lambda x: np.roll(x, 1), lambda x: np.roll(x, 1)),
    ("roll-back-2", lambda x: np.roll(x, -2), lambda x: np.roll(x, -2)),
    ("roll-past-pieces", lambda x: np.roll(x, 7), lambda x: np.roll(x, 7)),
    ("roll-many-turns", lambda x: np.roll(x, -23), lambda x: np.roll(x, -23)),
    ("roll-zero", lambda x: np.roll(x, 0) * x, lambda x: x * x),
    ("roll-axis0", lambda x: np.roll(x, 3, axis=0), lambda x: np.roll(x, 3, axis=0)),
    ("roll-flat", lambda x: np.roll(x, 4), lambda x: np.roll(x, 4)),
    ("roll-axis1", lambda x: np.roll(x, 1, axis=1), lambda x: np.roll(x, 1, axis=1)),
    ("roll-both-axes", lambda x: np.roll(x, (2, -1), axis=(0, 1)),
     lambda x: np.roll(x, (2, -1), axis=(0, 1))),
    ("diff", lambda x: np.diff(x, axis=0), lambda x: np.diff(x, axis=0)),
    ("diff-2", lambda x: np.diff(x, 2, axis=0), lambda x: np.diff(x, 2, axis=0)),
    ("diff-3", lambda x: np.diff(x, n=3, axis=0), lambda x: np.diff(x, n=3, axis=0)),
    ("diff-last-axis", lambda x: np.diff(x), lambda x: np.diff(x)),
    ("shifted-slices", lambda x: x[1:] - x[:-1], lambda x: x[1:] - x[:-1]),
    ("central-difference", lambda x: (x[2:] - x[:-2]) * 0.5 + x[1:-1] ** 2,
     lambda x: (x[2:] - x[:-2]) * 0.5 + x[1:-1] ** 2),
    ("laplacian", lambda x: x[:-2] - 2.0 * x[1:-1] + x[2:], lambda x: x[:-2] - 2 * x[1:-1] + x[2:]),
    ("periodic-laplacian", lambda x: np.roll(x, 1, axis=0) - 2.0 * x + np.roll(x, -1, axis=0),
     lambda x: np.roll(x, 1, axis=0) - 2 * x + np.roll(x, -1, axis=0)),
    ("strided-difference", lambda x: x[2::2] - x[:-2:2], lambda x: x[2::2] - x[:-2:2]),
    ("reversed-difference", lambda x: x[::-1][1:] - x[:-1], lambda x: x[::-1][1:] - x[:-1]),
]


_MATRIX_ONLY = ("roll-axis1", "roll-both-axes")
_RUNS = [pytest.param(fn, reference, data, id=f"{name}-{data_name}")
         for name, fn, reference in SHIFTS
         for data_name, data in (("vector", VECTOR), ("matrix", MATRIX))
         if data_name == "matrix" or name not in _MATRIX_ONLY]


@pytest.mark.mpi
@pytest.mark.parametrize("fn,reference,data", _RUNS)
def test_shift(fn, reference, data, splits, check_against_serial):
    check_against_serial(fn, [data], splits, expected=reference(data))


@pytest.mark.mpi
def test_diff_needs_no_prepend_and_a_valid_order(comm):
    x = crk.array(VECTOR[:3], comm=comm, distributed=True)
    with pytest.raises(TypeError, match="prepend= and append= are not supported"):
        np.diff(x, prepend=0.0)
    with pytest.raises(ValueError, match="order must be non-negative but got -1"):
        np.diff(x, -1)
    with pytest.raises(ValueError, match="argument 'shift' must be an int or one int per axis"):
        np.roll(x, 1.5)
    assert np.diff(x, 0) is x
