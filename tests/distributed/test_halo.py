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


def _heat_loop(schedule, comm, split, steps=9, n=10):
    """Explicit heat steps with a fixed boundary value and a periodic source, all on neighbour
    shifts: u <- u + k (u[:-2] - 2 u[1:-1] + u[2:]) in the interior, u[0] held at u0[-1]."""
    tape = crk.Tape(checkpointing=schedule)
    with tape:
        u0 = crk.array(np.linspace(0.2, 1.0, n)[split(n)], comm=comm, distributed=True)
        k = crk.AdjFloat(0.2)
        u = u0
        for _ in tape.timesteps(steps):
            interior = u[1:-1] + k * (u[:-2] - 2.0 * u[1:-1] + u[2:])
            u = crk.concatenate([u[:1], interior, u[-1:]]).at[0].set(u0[-1])
            u = u + 0.01 * np.sin(np.roll(u, 3))
        J = crk.sum(u * u) + np.diff(u)[2] ** 2
        rf = crk.ReducedFunctional(J, [crk.Control(k), crk.Control(u0)])
    return rf


@pytest.mark.mpi
@pytest.mark.parametrize("schedule", ["revolve", "multistage", "store-all"])
def test_stencils_in_checkpointed_loops_match_store_all(schedule, comm, splits,
                                                        assert_replicated):
    from crk.checkpointing import Multistage, Revolve, StoreAll
    make = {"revolve": lambda: Revolve(9, 2), "multistage": lambda: Multistage(9, 1, 1),
            "store-all": StoreAll}[schedule]
    ref, rf = _heat_loop(None, comm, splits), _heat_loop(make(), comm, splits)
    h = [0.1, np.cos(np.arange(10))[splits(10)]]
    for a, b in zip(rf.derivative(), ref.derivative()):
        np.testing.assert_allclose(np.asarray(a._ad_create_checkpoint()),
                                   np.asarray(b._ad_create_checkpoint()), rtol=1e-12)
    for a, b in zip(rf.hessian(h), ref.hessian(h)):
        np.testing.assert_allclose(np.asarray(a._ad_create_checkpoint()),
                                   np.asarray(b._ad_create_checkpoint()), rtol=1e-11)
    assert_replicated(float(rf.derivative()[0]))
    rates = crk.taylor_to_dict(rf, [0.2, np.linspace(0.2, 1.0, 10)[splits(10)]], h)
    assert min(rates["R1"]["Rate"]) > 1.9 and min(rates["R2"]["Rate"]) > 2.9
