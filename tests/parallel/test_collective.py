"""Failure agreement: an exception on one rank during tape evaluation raises on every rank, fast,
and leaves crk's collectives usable afterwards."""
import numpy as np
import pytest

import crk
from crk.parallel import CollectiveError, collective_section
from conftest import split_range


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
def test_failure_on_one_rank_raises_everywhere(comm, where):
    n = 10
    with crk.Tape():
        x = crk.array(np.linspace(0, 1, n)[split_range(n, comm)], comm=comm, distributed=True)
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
                                   (2 * np.sin(xs) * np.cos(xs))[split_range(n, comm)],
                                   rtol=1e-12)


@pytest.mark.mpi
def test_collective_section_surfaces_user_errors(comm):
    x = crk.array(np.ones(3), comm=comm, distributed=True)
    if comm.size == 1:
        with pytest.raises(ZeroDivisionError):
            with collective_section(comm):
                1 / 0
        return
    if comm.rank == 0:
        with pytest.raises(ZeroDivisionError):
            with collective_section(comm, where="user setup"):
                1 / 0
    else:
        with pytest.raises(CollectiveError, match=r"rank 0: ZeroDivisionError in user setup.*"
                                                  r"stopped in a crk sum over ranks"):
            with collective_section(comm, where="user setup"):
                crk.sum(x)          # a crk collective the failing rank never reaches
    assert float(crk.sum(x)) == pytest.approx(3.0 * comm.size)
