"""Distributed meanings of the numpy functions (run under mpirun -n 1, 2, 3 with uneven splits):
global selections and their tie rule, empty pieces, global scans, plain global results,
differences, shifts, joins and reshapes along the distributed axis equal to numpy on the global
array, and the refusals of what has no global meaning in crk — raised on every rank, on every
rank count.
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


# -- operations along the distributed axis with a global meaning ---------------------------------
ROWS = 7
VECTOR = np.linspace(-0.8, 1.1, ROWS) ** 3
MATRIX = np.stack([np.linspace(-1.0, 1.0, ROWS), np.linspace(2.0, 3.0, ROWS) ** 2], axis=1)

GLOBAL = [
    ("diff", lambda v: np.diff(v), VECTOR),
    ("diff-axis0", lambda m: np.diff(m, axis=0), MATRIX),
    ("diff-prepend-append", lambda v: np.diff(v, prepend=0.5, append=v[:1] * 2.0), VECTOR),
    ("roll", lambda v: np.roll(v, 1), VECTOR),
    ("roll-axis0", lambda m: np.roll(m, 1, axis=0), MATRIX),
    ("roll-flattened", lambda m: np.roll(m, 3), MATRIX),
    ("flip", lambda v: np.flip(v), VECTOR),
    ("flip-both-axes", lambda m: np.flip(m), MATRIX),
    ("concatenate", lambda v: np.concatenate([v, v ** 2]), VECTOR),
    ("hstack", lambda v: np.hstack([v, v[2:]]), VECTOR),
    ("vstack", lambda m: np.vstack([m, m[::-2]]), MATRIX),
    ("reshape", lambda m: np.reshape(m[:6], (-1, 4)), MATRIX),
    ("ravel", lambda m: np.ravel(m)[3:11], MATRIX),
    ("expand-dims", lambda v: np.expand_dims(v, 1) * v[:, None], VECTOR),
    ("squeeze", lambda m: np.squeeze(m[:, :1], axis=1), MATRIX),
    ("broadcast-to", lambda m: np.broadcast_to(m[:, :1], (ROWS, 3)), MATRIX),
    ("trapezoid", lambda v: np.trapezoid(v), VECTOR),
    ("trapezoid-axis0", lambda m: np.trapezoid(m, dx=0.3, axis=0), MATRIX),
    ("median-axis1", lambda m: np.median(m, axis=1, keepdims=True), MATRIX),
    ("sort-axis1", lambda m: np.sort(m[::-1] * [1.0, -1.0], axis=1), MATRIX),
    ("take-along-axis1", lambda m: np.take_along_axis(m, np.array([[1, 0, 1]]), axis=1), MATRIX),
]


@pytest.mark.mpi
@pytest.mark.parametrize("fn,data", [pytest.param(fn, data, id=name)
                                     for name, fn, data in GLOBAL])
def test_operations_along_the_distributed_axis_are_global(fn, data, splits,
                                                          check_against_serial):
    """Each equals numpy on the global array, with the serial derivatives (all four kinds)."""
    check_against_serial(fn, [data], splits, expected=fn(data))


@pytest.mark.mpi
def test_plain_arrays_along_the_distributed_axis_are_pieces(comm, split, assert_replicated):
    """A plain array joined with distributed ones, or sample points of a distributed y, is
    this rank's piece (as in arithmetic); a replicated crk array joined is whole rows."""
    rng = np.random.default_rng(3)
    full, extra, rows = rng.standard_normal((ROWS, 2)), rng.standard_normal((5, 2)), \
        rng.standard_normal((2, 2))
    points = np.linspace(0.0, 1.0, ROWS) ** 2
    with crk.Tape():
        x = _dist(full, comm, split)
        y = np.concatenate([x, extra[split(5)], crk.array(rows, comm=comm), x[:1]])
        assert y.distributed
        expected = np.concatenate([full, extra, rows, full[:1]])
        np.testing.assert_array_equal(_gathered(y, comm), expected)
        t = np.trapezoid(x, points[split(ROWS)], axis=0)
        assert_replicated(t)
        np.testing.assert_allclose(t.value, np.trapezoid(full, points, axis=0), rtol=1e-14)
        J = crk.sum(y * y) + crk.sum(t)
        weights = np.concatenate([[0.0], np.diff(points), [0.0]])
        expected = 2.0 * full + 0.5 * (weights[1:] + weights[:-1])[:, None]
        expected[0] += 2.0 * full[0]
        np.testing.assert_allclose(_gradient(J, x, comm), expected, rtol=1e-13)


# -- refusals: the same error on every rank, whatever the number of ranks ----------------------
def _arrays(comm, split):
    rng = np.random.default_rng(0)
    return dict(
        v=_dist(rng.standard_normal(ROWS), comm, split),
        m=_dist(rng.standard_normal((ROWS, 2)), comm, split),
        s=_dist(rng.standard_normal((ROWS, ROWS)), comm, split),
        w=crk.array(rng.standard_normal(ROWS), comm=comm),
        r=crk.array(rng.standard_normal((ROWS, 2)), comm=comm),
        a=crk.AdjFloat(0.5),
    )


REFUSALS = [
    ("sort", lambda v, **_: np.sort(v), r"crk.sort: axis -1 is the distributed axis 0"),
    ("sort-axis0", lambda m, **_: np.sort(m, axis=0), r"crk.sort: axis 0 is the distributed"),
    ("take-along-axis0", lambda m, **_: np.take_along_axis(m, np.zeros((1, 2), int), axis=0),
     r"crk.take_along_axis: axis 0 is the distributed"),
    ("trapezoid-distributed-points", lambda v, r, **_: np.trapezoid(r, v),
     r"crk.trapezoid: .*distributed sample points 'x' must run along the distributed axis 0"),
    ("median", lambda v, **_: np.median(v),
     r"crk.median: not supported for distributed arrays: the median over the distributed "
     r"axis 0 needs a global sort"),
    ("median-axis0", lambda m, **_: np.median(m, axis=0), r"crk.median: .*global sort"),
    ("broadcast-to-new-axis", lambda v, **_: np.broadcast_to(v, (2, ROWS)),
     r"crk.broadcast_to: broadcasting a distributed array of 1 dimensions to the shape "
     r"\(2, 7\) adds leading axes, which would move its distributed axis 0"),
    ("broadcast-to-along-axis0", lambda m, **_: np.broadcast_to(m[:1], (ROWS, 2)),
     r"crk.broadcast_to: the shape \(7, 2\) must keep the global length 1 of the "
     r"distributed axis 0"),
    ("vstack-vectors", lambda v, **_: np.vstack([v, v]),
     r"crk.vstack: a distributed array of 1 dimensions would become a row of a 2-d array"),
    ("concatenate-columns-mixed", lambda m, r, **_: np.concatenate([m, r], axis=1),
     r"crk.concatenate: cannot mix distributed and replicated arrays"),
    ("stack", lambda v, **_: np.stack([v, v]),
     r"crk.stack: stacking distributed arrays along axis 0 would move their distributed axis"),
    ("expand-dims", lambda v, **_: np.expand_dims(v, 0),
     r"crk.expand_dims: a new axis 0 would move the distributed axis"),
    ("squeeze", lambda m, **_: np.squeeze(m[:, :1], axis=0),
     r"crk.squeeze: axis 0 of a distributed array is its distributed axis"),
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
