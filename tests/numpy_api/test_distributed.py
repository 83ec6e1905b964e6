"""Distributed meanings of the numpy functions (run under mpirun -n 1, 2, 3 with uneven splits):
global selections and their tie rule, empty pieces, global scans, plain global results, and the
refusals of local meanings — raised on every rank, on every rank count.
"""
import numpy as np
import pytest

import crk
from crk.overloaded_type import plain_value


def _dist(full, comm, split):
    return crk.array(full[split(len(full))], comm=comm, distributed=True)


def _gathered(value, comm):
    return np.concatenate(comm.allgather(np.asarray(plain_value(value))))


def _gradient(J, x, comm):
    g = crk.compute_gradient(J, crk.Control(x))
    return _gathered(g, comm)


TIES = np.array([1.0, 3.0, 0.0, 3.0, -1.0, 3.0, 2.0, -1.0, 0.5, -1.0, 3.0])


@pytest.mark.mpi
@pytest.mark.parametrize("name,fn,index", [
    ("max", crk.max, 1), ("min", crk.min, 4),
    ("amax", np.amax, 1), ("amin", np.amin, 4),
])
def test_selection_ties_go_to_the_lowest_global_index(name, fn, index, comm, split,
                                                      assert_replicated):
    """The maximum 3.0 sits at 1, 3, 5, 10 and the minimum -1.0 at 4, 7, 9, on several ranks:
    the derivative goes to the first, as argmax/argmin say, identically on every rank count."""
    with crk.Tape():
        x = _dist(TIES, comm, split)
        J = fn(x) * 2.0
        assert float(J) == 2.0 * (TIES.max() if "max" in name else TIES.min())
        assert_replicated(J)
        expected = np.zeros_like(TIES)
        expected[index] = 2.0
        np.testing.assert_array_equal(_gradient(J, x, comm), expected)
        arg = np.argmax(x) if "max" in name else np.argmin(x)
        assert arg == index
        assert_replicated(float(arg))


@pytest.mark.mpi
def test_columnwise_selection_and_argmax(comm, split, assert_replicated):
    full = np.stack([TIES, -TIES, np.zeros_like(TIES)], axis=1)
    with crk.Tape():
        x = _dist(full, comm, split)
        top = crk.max(x, axis=0)
        assert_replicated(top)
        np.testing.assert_array_equal(plain_value(top), full.max(axis=0))
        J = crk.sum(top * np.array([1.0, 2.0, 3.0]))
        expected = np.zeros_like(full)
        for column, weight in enumerate([1.0, 2.0, 3.0]):
            expected[np.argmax(full[:, column]), column] = weight
        g = crk.compute_gradient(J, crk.Control(x))
        np.testing.assert_array_equal(_gathered(g, comm), expected)
        for axis, keepdims in ((0, False), (None, False), (0, True), (None, True)):
            for fn in (np.argmax, np.argmin):
                got = fn(x, axis=axis, keepdims=keepdims)
                np.testing.assert_array_equal(got, fn(full, axis=axis, keepdims=keepdims))
                assert_replicated(np.asarray(got, dtype=float))
        np.testing.assert_array_equal(np.argmax(x, axis=1), np.argmax(full, axis=1)[
            split(len(full))])


@pytest.mark.mpi
def test_nan_is_selected_first(comm, split):
    full = np.array([1.0, 2.0, np.nan, 5.0, np.nan, 0.0, 7.0])
    x = _dist(full, comm, split)
    assert np.argmax(x) == 2 and np.argmin(x) == 2
    assert np.isnan(float(crk.max(x))) and np.isnan(float(crk.min(x)))


@pytest.mark.mpi
def test_pieces_may_be_empty(comm, assert_replicated):
    """Only the last rank holds data: global reductions, scans and selections still agree with
    serial numpy; an array empty on every rank has no max, on every rank."""
    full = np.array([0.5, -2.0, 3.0, 0.25])
    piece = full if comm.rank == comm.size - 1 else full[:0]
    with crk.Tape():
        x = crk.array(piece, comm=comm, distributed=True)
        for fn in (crk.max, crk.min, crk.prod, crk.sum, crk.mean, np.ptp, np.var, np.std):
            value = fn(x)
            assert float(value) == pytest.approx(fn(full), rel=1e-14)
            assert_replicated(value)
        np.testing.assert_allclose(_gathered(np.cumsum(x), comm), np.cumsum(full), rtol=1e-14)
        assert np.argmax(x) == 2 and np.argmin(x) == 1 and np.count_nonzero(x) == 4
        J = crk.max(x) * crk.prod(x)
        expected = full.max() * np.array([-1.5, 0.375, -0.25, -3.0])
        expected[2] += full.prod()
        np.testing.assert_allclose(_gradient(J, x, comm), expected, rtol=1e-14)
        empty = crk.array(np.zeros((0, 2)), comm=comm, distributed=True)
        with pytest.raises(ValueError, match="crk.max: zero-size array"):
            crk.max(empty)
        with pytest.raises(ValueError, match="argmax of an empty sequence"):
            np.argmax(empty)


@pytest.mark.mpi
def test_prod_derivative_with_zeros(comm, split, assert_replicated):
    one_zero = np.array([2.0, 0.0, 3.0, 0.5, -1.0, 4.0, 1.5])
    two_zeros = one_zero.copy()
    two_zeros[5] = 0.0
    with crk.Tape():
        x = _dist(one_zero, comm, split)
        J = crk.prod(x)
        expected = np.zeros_like(one_zero)
        expected[1] = np.prod(np.delete(one_zero, 1))
        np.testing.assert_allclose(_gradient(J, x, comm), expected, rtol=1e-14)
        y = _dist(two_zeros, comm, split)
        np.testing.assert_array_equal(_gradient(crk.prod(y), y, comm), np.zeros(7))


@pytest.mark.mpi
def test_cumsum_over_ranks(comm, split):
    """A global prefix: rank 0's piece is bit-identical to serial numpy, the rest equal to
    round-off; the adjoint is the reversed scan."""
    rng = np.random.default_rng(5)
    full = rng.standard_normal((13, 2))
    with crk.Tape():
        x = _dist(full, comm, split)
        c = np.cumsum(x, axis=0)
        assert c.distributed
        mine = split(len(full))
        if comm.rank == 0:
            np.testing.assert_array_equal(plain_value(c), np.cumsum(full, axis=0)[mine])
        np.testing.assert_allclose(_gathered(c, comm), np.cumsum(full, axis=0), rtol=1e-13)
        weights = np.arange(26.0).reshape(13, 2)
        J = crk.sum(c * weights[mine])
        np.testing.assert_allclose(_gradient(J, x, comm),
                                   np.cumsum(weights[::-1], axis=0)[::-1], rtol=1e-13)


@pytest.mark.mpi
def test_plain_reductions_are_global(comm, split, assert_replicated):
    full = np.array([[0.0, 1.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    x = _dist(full, comm, split)
    for fn in (np.any, np.all, np.count_nonzero):
        for axis in (None, 0):
            got = fn(x, axis=axis)
            np.testing.assert_array_equal(got, fn(full, axis=axis))
            assert_replicated(np.asarray(got, dtype=float))
        np.testing.assert_array_equal(fn(x, axis=1), fn(full, axis=1)[split(len(full))])
    assert np.allclose(x, x) and np.array_equal(x, x)
    other = full.copy()
    other[-1, -1] = 1.0            # differs on the last rank only: false everywhere
    y = _dist(other, comm, split)
    assert not np.allclose(x, y) and not np.array_equal(x, y)


# -- refusals: the same error on every rank, whatever the number of ranks ----------------------
def _arrays(comm, split):
    rng = np.random.default_rng(0)
    return dict(
        v=_dist(rng.standard_normal(7), comm, split),
        m=_dist(rng.standard_normal((7, 2)), comm, split),
        s=_dist(rng.standard_normal((7, 7)), comm, split),
        w=crk.array(rng.standard_normal(7), comm=comm),
        a=crk.AdjFloat(0.5),
    )


REFUSALS = [
    ("diff", lambda v, m, **_: np.diff(v), r"crk.diff: axis -1 is the distributed axis 0"),
    ("diff-axis0", lambda m, **_: np.diff(m, axis=0), r"crk.diff: axis 0 is the distributed"),
    ("roll", lambda v, **_: np.roll(v, 1),
     r"crk.roll: axis None \(the flattened array\) runs along the distributed axis 0"),
    ("roll-axis0", lambda m, **_: np.roll(m, 1, axis=0), r"crk.roll: axis 0 is the distributed"),
    ("flip", lambda v, **_: np.flip(v), r"crk.flip: axis 0 is the distributed axis 0"),
    ("sort", lambda v, **_: np.sort(v), r"crk.sort: axis -1 is the distributed axis 0"),
    ("sort-axis0", lambda m, **_: np.sort(m, axis=0), r"crk.sort: axis 0 is the distributed"),
    ("take-along-axis0", lambda m, **_: np.take_along_axis(m, np.zeros((1, 2), int), axis=0),
     r"crk.take_along_axis: axis 0 is the distributed"),
    ("trapezoid", lambda v, **_: np.trapezoid(v), r"crk.trapezoid: axis 0 is the distributed"),
    ("median", lambda v, **_: np.median(v), r"crk.median: not supported for distributed arrays"),
    ("broadcast-to", lambda v, **_: np.broadcast_to(v, (2, len(v))),
     r"crk.broadcast_to: not supported for distributed arrays"),
    ("concatenate", lambda v, **_: np.concatenate([v, v]),
     r"crk.concatenate: joining distributed arrays along their distributed axis 0"),
    ("hstack", lambda v, **_: np.hstack([v, v]), r"crk.concatenate: joining distributed"),
    ("vstack", lambda m, **_: np.vstack([m, m]), r"crk.concatenate: joining distributed"),
    ("stack", lambda v, **_: np.stack([v, v]), r"crk.stack: joining distributed arrays"),
    ("reshape", lambda m, **_: np.reshape(m, (-1, 4)),
     r"crk.reshape: a distributed array of row shape \(2,\) cannot take the shape \(-1, 4\)"),
    ("expand-dims", lambda v, **_: np.expand_dims(v, 0),
     r"crk.expand_dims: axis 0 is the distributed axis 0"),
    ("squeeze", lambda m, **_: np.squeeze(m[:, :1], axis=0),
     r"crk.squeeze: axis 0 is the distributed axis 0"),
    ("transpose", lambda m, **_: m.T, r"crk.transpose: a distributed array must keep"),
    ("einsum-moved", lambda m, **_: np.einsum("ij->ji", m),
     r"crk.einsum: subscripts 'ij->ji': the distributed axis must stay first"),
    ("einsum-outer", lambda v, **_: np.einsum("i,j->ij", v, v),
     r"the distributed operands do not share their axis 0"),
    ("einsum-replicated-index", lambda m, w, **_: np.einsum("ij,i->j", m, w),
     r"a replicated operand is indexed by the distributed axis"),
    ("einsum-diagonal", lambda s, **_: np.einsum("ii->i", s),
     r"the distributed axis appears twice in one operand"),
    ("tensordot", lambda m, w, **_: np.tensordot(m, w, axes=([0], [0])),
     r"crk.tensordot: .*a replicated operand is indexed by the distributed axis"),
    ("argsort", lambda v, **_: np.argsort(v), r"crk.argsort: not supported for distributed"),
    ("nonzero", lambda v, **_: np.nonzero(v), r"crk.nonzero: not supported for distributed"),
    ("interp-table", lambda v, w, **_: np.interp(w, np.arange(7.0), v),
     r"crk.interp: not supported for distributed arrays: the table of values 'fp'"),
    ("polyval", lambda v, a, **_: np.polyval(v, a),
     r"crk.polyval: not supported for distributed arrays: the coefficients"),
    ("average-weights", lambda m, w, **_: np.average(m[:, 0], axis=0, weights=w),
     r"crk.average: not supported for distributed arrays: weights along the distributed"),
    ("copysign", lambda v, a, **_: np.copysign(a, v),
     r"crk.copysign: not supported for distributed arrays"),
    ("trace", lambda s, **_: np.trace(s), r"crk.trace: not defined for a distributed array"),
    ("dot-replicated", lambda v, w, **_: np.dot(v, w), r"crk.dot: this product contracts"),
]


@pytest.mark.mpi
@pytest.mark.parametrize("name,call,message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_local_meanings_are_refused_on_every_rank(name, call, message, comm, split):
    with crk.Tape():
        with pytest.raises(ValueError, match=message):
            call(**_arrays(comm, split))
