"""gather / scatter / redistribute as recorded operations, serially and on 2/3 ranks: values,
derivatives against the serial run, replicated adjoints summed exactly once, argument errors."""
import numpy as np
import pytest

import crk

N = 8
DATA = np.linspace(-0.7, 1.3, 2 * N).reshape(N, 2)


@pytest.mark.mpi
@pytest.mark.parametrize("name,fn", [
    ("gather", lambda x: crk.gather(x) * crk.gather(x)[::-1]),
    ("gather-vector", lambda x: crk.gather(x[:, 0]) ** 2),
    ("scatter-of-gather", lambda x: crk.scatter(crk.gather(x) ** 2) * x),
    ("scatter-counts", lambda x: crk.scatter(crk.gather(x),
                                             counts=[N] + [0] * (x.comm.size - 1)) ** 2),
    ("redistribute-balanced", lambda x: crk.redistribute(x) ** 3),
    ("redistribute-onto-one-rank", lambda x: crk.redistribute(
        x, counts=[0] * (x.comm.size - 1) + [N]) * 2.0),
    ("redistribute-then-combine", lambda x: crk.redistribute(x) * x),
], ids=lambda v: v if isinstance(v, str) else "")
def test_moves_match_serial(name, fn, splits, check_against_serial):
    check_against_serial(fn, [DATA], splits)


@pytest.mark.mpi
def test_gather_is_replicated_and_in_global_order(comm, splits, assert_replicated):
    x = crk.array(DATA[splits(N)], comm=comm, distributed=True)
    g = crk.gather(x)
    assert not g.distributed and g.shape == DATA.shape
    assert_replicated(g)
    np.testing.assert_array_equal(g.value, DATA)


@pytest.mark.mpi
def test_scatter_gives_each_rank_its_rows(comm):
    counts = [(r + 1) % 3 for r in range(comm.size)]
    counts[-1] += N - sum(counts)
    y = crk.scatter(crk.array(DATA), counts=counts, comm=comm)
    start = sum(counts[:comm.rank])
    assert y.distributed
    np.testing.assert_array_equal(y.value, DATA[start:start + counts[comm.rank]])


@pytest.mark.mpi
def test_replicated_adjoints_are_summed_exactly_once(comm, assert_replicated):
    """A replicated control reaching distributed data through scatter (whose adjoint gathers)
    and through arithmetic (whose contributions the tape sums) gets its serial derivative."""
    r0 = np.linspace(0.2, 1.0, N)
    with crk.Tape():
        r = crk.array(r0, comm=comm)
        a = crk.AdjFloat(0.7)
        d = crk.scatter(r, comm=comm) * a
        J = crk.sum(d * d) + crk.sum(crk.gather(d) * r)
        rf = crk.ReducedFunctional(J, [crk.Control(r), crk.Control(a)])
        dr, da = rf.derivative()
        assert_replicated(dr)
        assert_replicated(da)
        np.testing.assert_allclose(dr.value, 2 * 0.7 ** 2 * r0 + 2 * 0.7 * r0, rtol=1e-13)
        assert float(da) == pytest.approx(2 * 0.7 * np.sum(r0 ** 2) + np.sum(r0 ** 2), rel=1e-13)
        hr, ha = rf.hessian([np.ones(N), 0.5])
        assert_replicated(hr)
        rates = crk.taylor_to_dict(rf, [r, a], [np.cos(np.arange(N)), 0.3])
        assert min(rates["R1"]["Rate"]) > 1.9 and min(rates["R2"]["Rate"]) > 2.9


@pytest.mark.mpi
def test_argument_errors_are_clear(comm):
    x = crk.array(DATA[:2], comm=comm, distributed=True)
    r = crk.array(DATA)
    with pytest.raises(TypeError, match="crk.gather: argument 'x' must be a distributed "
                                        "crk.ndarray .* got a replicated crk.ndarray"):
        crk.gather(r)
    with pytest.raises(TypeError, match="crk.scatter: argument 'x' must be a replicated"):
        crk.scatter(x)
    with pytest.raises(ValueError, match=rf"crk.scatter: argument 'counts' must give "
                                         rf"{comm.size} non-negative row counts"):
        crk.scatter(r, counts=[N] * (comm.size + 1), comm=comm)
    with pytest.raises(ValueError, match=r"gives 3 rows in all but the array has 8 rows"):
        crk.scatter(r, counts=[3] + [0] * (comm.size - 1), comm=comm)
    with pytest.raises(TypeError, match="argument 'counts' must be a sequence"):
        crk.redistribute(x, counts="many")
    with pytest.raises(ValueError, match=rf"has {2 * comm.size} rows \(global length"):
        crk.redistribute(x, counts=[1] * comm.size)
