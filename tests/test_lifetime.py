"""Value lifetime across ranks: a value dropped to a shape stub on some ranks only (its object
released, or collected by the cycle collector, at different times on different ranks) is
recomputed on every rank by a replay, so a collective block among its producers runs
everywhere: the replay and the derivatives equal those of a tape that kept the value, on every
rank, and no rank waits in a collective the others skipped."""
import gc

import numpy as np
import pytest

import crk
from crk.checkpointing import Revolve
from crk.lifetime import is_stub

ROWS, COLUMNS = 9, 2


class _Cycle:
    """A reference cycle holding a value: with the cycle collector off, only an explicit
    gc.collect() frees it."""

    def __init__(self, value):
        self.value = value
        self.me = self


def _record(comm, split, schedule):
    """J = Σ (sin(x + s))² (through a 3-step loop when ``schedule`` is given), with
    s = Σ_rows data a global sum (a collective) that does not depend on the control x and is
    read by no derivative rule, so it may be dropped. The only reference to s is left in a
    reference cycle. Returns (rf, the cycle, s's BlockVariable)."""
    rows = split(ROWS)
    data = np.linspace(-1.0, 1.0, ROWS * COLUMNS).reshape(ROWS, COLUMNS)
    tape = crk.Tape(checkpointing=schedule)
    with tape:
        x = crk.array(np.linspace(0.1, 0.9, ROWS * COLUMNS).reshape(ROWS, COLUMNS)[rows],
                      comm=comm, distributed=True)
        cycle = _Cycle(crk.sum(crk.array(data[rows], comm=comm, distributed=True), axis=0))
        u = x
        for _ in (tape.timesteps(3) if schedule is not None else range(3)):
            u = crk.sin(u + cycle.value)          # `+` reads no values: s is droppable
        J = crk.sum(u * u)
        rf = crk.ReducedFunctional(J, crk.Control(x))
    return rf, cycle, cycle.value._bv


SCHEDULES = {"keep-all": lambda: None, "revolve": lambda: Revolve(3, 1)}


@pytest.mark.mpi
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("how", ["released", "collected"])
def test_a_value_dropped_on_one_rank_is_recomputed_on_every_rank(how, schedule, comm, split,
                                                                  assert_replicated):
    """s is dropped on rank 0 only: its object released there (reference count), or its
    reference cycle collected there only. Replays, gradients and Hessian actions equal those of
    the same tape with s kept, bit for bit, on 1, 2 and 3 ranks."""
    enabled = gc.isenabled()
    gc.disable()                                 # no rank collects unless the test says so
    try:
        rf_kept, _, kept_bv = _record(comm, split, SCHEDULES[schedule]())
        rf, cycle, s_bv = _record(comm, split, SCHEDULES[schedule]())
        if comm.rank == 0:
            if how == "released":
                cycle.value = None               # the object dies at once
            else:
                del cycle
                gc.collect()                     # this rank only
        assert is_stub(s_bv.checkpoint) == (comm.rank == 0)
        assert not is_stub(kept_bv.checkpoint)
        m = np.linspace(-0.4, 0.7, ROWS * COLUMNS).reshape(ROWS, COLUMNS)[split(ROWS)]
        for point in (m, 0.5 * m):
            J, J_kept = rf(point), rf_kept(point)
            assert_replicated(J)
            assert float(J) == float(J_kept)
            np.testing.assert_array_equal(rf.derivative().value, rf_kept.derivative().value)
            np.testing.assert_array_equal(rf.hessian(m).value, rf_kept.hessian(m).value)
    finally:
        if enabled:
            gc.enable()


@pytest.mark.mpi
def test_ranks_needing_different_producers_rerun_them_all(comm, split, assert_replicated):
    """w = Σ_rows data (a global sum), v = w + 1, J = Σ sin(x + v)²: rank 0 drops v (so it
    reruns v's producer, which reads w), the last rank drops w (so v's producer, rerun there
    too, needs w's collective producer rerun as well): every rank reruns both."""
    rows = split(ROWS)
    data = np.linspace(-1.0, 1.0, ROWS * COLUMNS).reshape(ROWS, COLUMNS)
    x0 = np.linspace(0.1, 0.9, ROWS * COLUMNS).reshape(ROWS, COLUMNS)[rows]
    results = []
    for drop in (False, True):
        with crk.Tape():
            x = crk.array(x0, comm=comm, distributed=True)
            w = crk.sum(crk.array(data[rows], comm=comm, distributed=True), axis=0)
            v = w + 1.0
            J = crk.sum(crk.sin(x + v) ** 2)
            rf = crk.ReducedFunctional(J, crk.Control(x))
        w_bv, v_bv = w._bv, v._bv
        if drop and comm.rank == 0:
            del v
        if drop and comm.rank == comm.size - 1:
            del w
        if drop:
            assert is_stub(v_bv.checkpoint) == (comm.rank == 0)
            assert is_stub(w_bv.checkpoint) == (comm.rank == comm.size - 1)
        J = rf(0.5 * x0)
        assert_replicated(J)
        results.append((float(J), rf.derivative().value, rf.hessian(x0).value))
    (J_kept, g_kept, h_kept), (J, g, h) = results
    assert J == J_kept
    np.testing.assert_array_equal(g, g_kept)
    np.testing.assert_array_equal(h, h_kept)
