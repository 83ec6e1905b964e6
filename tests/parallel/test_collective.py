"""Failure agreement: an exception on one rank during tape evaluation raises on every rank, fast,
and leaves crk's collectives usable afterwards."""
import numpy as np
import pytest

import crk
from crk.parallel import CollectiveError, collective_section


class FaultyBlock(crk.Block):
    """Identity on a distributed array that raises on one rank when asked to."""

    fail_rank = None
    fail_in = None

    def __init__(self, x):
        super().__init__()
        self.add_dependency(x)

    def _maybe_fail(self, where):
        from mpi4py import MPI
        if self.fail_in == where and MPI.COMM_WORLD.rank == self.fail_rank:
            raise RuntimeError(f"injected failure in {where}")

    def recompute_component(self, inputs, block_variable, idx, prepared):
        self._maybe_fail("recompute")
        return inputs[0]

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        self._maybe_fail("tlm")
        return tlm_inputs[0]

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        self._maybe_fail("adjoint")
        return adj_inputs[0]


def _faulty(x):
    y = crk.array(x.value, comm=x.comm, distributed=True)
    block = FaultyBlock(x)
    block.add_output(y)
    crk.get_working_tape().add_block(block)
    return y


@pytest.mark.mpi
@pytest.mark.parametrize("where", ["recompute", "tlm", "adjoint"])
def test_failure_on_one_rank_raises_everywhere(comm, split, where):
    n = 10
    with crk.Tape():
        x = crk.array(np.linspace(0, 1, n)[split(n)], comm=comm, distributed=True)
        y = _faulty(np.sin(x))
        J = crk.sum(y * y)          # a collective after the faulty block
        rf = crk.ReducedFunctional(J, crk.Control(x))
        FaultyBlock.fail_rank, FaultyBlock.fail_in = comm.size - 1, where
        try:
            action = {"recompute": lambda: rf(x),
                      "tlm": lambda: rf.tlm(np.ones(x.shape)),
                      "adjoint": lambda: rf.derivative()}[where]
            if comm.rank == comm.size - 1:
                with pytest.raises(RuntimeError, match=f"injected failure in {where}"):
                    action()
            else:
                with pytest.raises(CollectiveError,
                                   match=f"rank {comm.size - 1}: RuntimeError in .*injected"):
                    action()
        finally:
            FaultyBlock.fail_rank = FaultyBlock.fail_in = None
        # Everyone is in step again: the next evaluation works on all ranks.
        xs = np.linspace(0, 1, n)
        assert float(rf(x)) == pytest.approx(float(np.sum(np.sin(xs) ** 2)), rel=1e-12)
        np.testing.assert_allclose(rf.derivative().value,
                                   (2 * np.sin(xs) * np.cos(xs))[split(n)],
                                   rtol=1e-12)


@pytest.mark.mpi
def test_collective_section_surfaces_user_errors(comm):
    x = crk.array(np.ones(3), comm=comm, distributed=True)
    if comm.size == 1:
        with pytest.raises(ZeroDivisionError):
            with collective_section(comm=comm):
                1 / 0
        return
    if comm.rank == 0:
        with pytest.raises(ZeroDivisionError):
            with collective_section(comm=comm, where="user setup"):
                1 / 0
    else:
        with pytest.raises(CollectiveError, match=r"rank 0: ZeroDivisionError in user setup.*"
                                                  r"stopped in a crk sum over ranks"):
            with collective_section(comm=comm, where="user setup"):
                crk.sum(x)          # a crk collective the failing rank never reaches
    assert float(crk.sum(x)) == pytest.approx(3.0 * comm.size)


class LocalZero(crk.Block):
    """Scales a distributed array by a replicated a; returns None (zero) for the adjoint of a
    on ranks without points — allowed, and must not leave the others waiting."""

    def __init__(self, x, a):
        super().__init__()
        self.add_dependency(x)
        self.add_dependency(a)

    def recompute_component(self, inputs, block_variable, idx, prepared):
        return inputs[0] * inputs[1]

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared):
        dx, da = tlm_inputs
        out = None if dx is None else dx * inputs[1]
        if da is not None and len(inputs[0]):
            out = (0 if out is None else out) + da * inputs[0]
        return out

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        if idx == 0:
            return adj_inputs[0] * inputs[1]
        return float(np.vdot(adj_inputs[0], inputs[0])) if len(inputs[0]) else None


@pytest.mark.mpi
def test_zero_contributions_on_some_ranks_do_not_hang(comm):
    full = np.arange(1.0, 6.0)
    holders = max(comm.size - 1, 1)    # the last rank has no points when size > 1
    pieces = np.array_split(full, holders) + [np.zeros(0)]
    with crk.Tape():
        x = crk.array(pieces[comm.rank], comm=comm, distributed=True)
        a = crk.AdjFloat(2.0)
        y = crk.array(x.value * 2.0, comm=comm, distributed=True)
        block = LocalZero(x, a)
        block.add_output(y)
        crk.get_working_tape().add_block(block)
        rf = crk.ReducedFunctional(crk.sum(y * y), crk.Control(a))
        assert float(rf.derivative()) == pytest.approx(2 * 2.0 * np.sum(full ** 2))
        assert rf.tlm(1.0) == pytest.approx(2 * 2.0 * np.sum(full ** 2))


@pytest.mark.mpi
def test_values_on_a_duplicate_communicator_agree_with_the_tape(comm):
    dup = comm.Dup()
    with crk.Tape():
        x = crk.array(np.ones(2), comm=dup, distributed=True)
        y = _faulty(x)
        J = crk.sum(y * y)
        rf = crk.ReducedFunctional(J, crk.Control(x))
        FaultyBlock.fail_rank, FaultyBlock.fail_in = 0, "recompute"
        try:
            with pytest.raises((RuntimeError, CollectiveError), match="injected"):
                rf(np.ones(2))
        finally:
            FaultyBlock.fail_rank = FaultyBlock.fail_in = None
        assert float(rf(np.ones(2))) == pytest.approx(2.0 * comm.size)
    dup.Free()


@pytest.mark.mpi
def test_bad_argument_on_one_rank_raises_everywhere(comm):
    with crk.Tape():
        x = crk.array(np.ones(2), comm=comm, distributed=True)
        rf = crk.ReducedFunctional(crk.sum(x * x), crk.Control(x))
        bad = np.ones(3) if comm.rank == 0 else np.ones(2)
        with pytest.raises((ValueError, CollectiveError), match=r"expected shape \(2,\)"):
            rf(bad)
        assert float(rf(np.ones(2))) == pytest.approx(2.0 * comm.size)


@pytest.mark.mpi
def test_ranks_that_recorded_different_tapes_are_told(comm):
    with crk.Tape():
        x = crk.array(np.ones(2), comm=comm, distributed=True)
        y = x * 2.0
        if comm.rank == 0:
            y = y + 1.0                 # a rank-dependent branch around a recorded operation
        J = crk.sum(y)
        if comm.size == 1:
            crk.ReducedFunctional(J, crk.Control(x))
            return
        with pytest.raises(RuntimeError, match="ranks recorded different tapes"):
            crk.ReducedFunctional(J, crk.Control(x))


# -- gathers and scans ---------------------------------------------------------------------------
@pytest.mark.mpi
def test_allgather_array_and_exclusive_scan(comm, assert_replicated):
    from crk.parallel import allgather_array, exclusive_scan
    mine = np.array([comm.rank + 0.5, -comm.rank])
    everyone = allgather_array(mine, comm)
    assert everyone.shape == (comm.size, 2)
    np.testing.assert_array_equal(everyone[:, 0], np.arange(comm.size) + 0.5)
    assert_replicated(everyone)
    assert exclusive_scan(mine, comm).tolist() == everyone[:comm.rank].sum(axis=0).tolist()
    assert exclusive_scan(float(comm.rank + 1), comm) == sum(range(1, comm.rank + 1))
    after = exclusive_scan(float(comm.rank + 1), comm, reverse=True)
    assert after == sum(range(comm.rank + 2, comm.size + 1)) and type(after) is float


@pytest.mark.mpi
def test_argmax_over_ranks_ties_nan_and_empty(comm, assert_replicated):
    """Rank r offers value 1 at global index 10 - r (rank 0's is the largest index), except the
    last rank, which has no candidate: the tie goes to the lowest index; a NaN beats numbers."""
    from crk.parallel import argmax_over_ranks
    last = comm.rank == comm.size - 1 and comm.size > 1
    values = np.array([1.0, -1.0, np.nan if comm.rank == comm.size - 1 else 0.0])
    indices = np.full(3, -1) if last else np.array([10 - comm.rank, 20 + comm.rank, 30])
    best = argmax_over_ranks(values, indices, comm)
    lowest = 10 - max(comm.size - 2, 0)
    # (with several ranks the NaN sits on the last rank, which offers no candidate)
    assert best.tolist() == [lowest, 20, 30]
    smallest = argmax_over_ranks(values, indices, comm, minimum=True)
    assert smallest.tolist() == [lowest, 20, 30]
    assert_replicated(best.astype(float))
    nan_everywhere = argmax_over_ranks(np.array([np.nan]), np.array([5 + comm.rank]), comm)
    assert nan_everywhere.tolist() == [5]
    one_nan = argmax_over_ranks(np.array([np.nan if comm.rank == comm.size - 1 else 9.0]),
                                np.array([comm.rank]), comm)
    assert one_nan.tolist() == [comm.size - 1]
