"""The debug switch: a replicated value that differs between ranks is caught after the operation
that made it, and the operation (and where it was recorded) is named on every rank."""
import re

import numpy as np
import pytest

import crk
from crk.distributed.replication_check import ReplicationError


def _rank_dependent(comm):
    """A primitive whose replicated result depends on the rank (a bug the switch must catch)."""
    return crk.Primitive("rank-dependent", lambda a: a + 0.5 * comm.rank)


@pytest.mark.mpi
def test_a_rank_dependent_result_is_named(comm):
    bad = _rank_dependent(comm)
    crk.defvjp(bad, lambda g, ans, a: g)
    with crk.Tape(check_replicated=True):
        a = crk.AdjFloat(1.5)
        b = a * 2.0
        if comm.size == 1:
            assert float(bad(b)) == 3.0          # one rank cannot disagree with itself
            return
        with pytest.raises(ReplicationError, match=re.escape(
                "replicated output 0 of <PrimitiveBlock rank-dependent> (recorded at")) as caught:
            bad(b)
        call = [e for e in caught.traceback if str(e.path) == __file__][-1]
        assert f"(recorded at {__file__}:{call.lineno + 1}) differs between ranks" in \
            str(caught.value)


@pytest.mark.mpi
def test_a_rank_dependent_input_is_named_at_its_first_use(comm, split):
    with crk.Tape(check_replicated=True):
        x = crk.array(np.ones(6)[split(6)], comm=comm, distributed=True)
        a = crk.AdjFloat(1.0 + comm.rank)          # replicated by declaration, not in fact
        if comm.size == 1:
            assert float(crk.sum(x * a)) == 6.0
            return
        with pytest.raises(ReplicationError, match=r"replicated input 1 of <PrimitiveBlock "
                                                   r"multiply> .* differs between ranks \(equal "
                                                   r"within: ranks \[0\]; ranks \[1\].*it was made "
                                                   r"outside recorded operations"):
            x * a


@pytest.mark.mpi
def test_correct_programs_pass_the_check(comm, splits, assert_replicated):
    with crk.Tape(check_replicated=True) as tape:
        x = crk.array(np.linspace(0, 1, 9)[splits(9)], comm=comm, distributed=True)
        p = crk.AdjFloat(0.3)
        J = crk.sum((x[1:] - x[:-1]) ** 2) * p + x[-1] * x[0] + crk.sum(crk.gather(x[::2]))
        J = J + crk.sum(np.roll(x, 2) * x) + crk.sum(x.at[[2, 5]].set(p))
        assert len(tape.get_blocks()) > 10
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(p)])
        assert_replicated(rf.derivative()[1])


def test_the_switch_follows_the_environment(monkeypatch):
    monkeypatch.setenv("CRK_CHECK_REPLICATED", "1")
    assert crk.Tape().check_replicated
    assert not crk.Tape(check_replicated=False).check_replicated
    monkeypatch.setenv("CRK_CHECK_REPLICATED", "0")
    assert not crk.Tape().check_replicated
    monkeypatch.delenv("CRK_CHECK_REPLICATED")
    assert not crk.Tape().check_replicated
    assert crk.Tape(check_replicated=True).check_replicated


@pytest.mark.mpi
def test_user_blocks_are_checked_too(comm):
    """Blocks added with Tape.add_block go through the same check."""
    class Scale(crk.Block):
        def __init__(self, a, factor):
            super().__init__()
            self.factor = factor
            self.add_dependency(a)

        def recompute_component(self, inputs, block_variable, idx, prepared):
            return inputs[0] * self.factor

    with crk.Tape(check_replicated=True) as tape:
        a = crk.AdjFloat(2.0)
        out = crk.AdjFloat(2.0 * (1 + comm.rank))
        block = Scale(a, 1 + comm.rank)
        block.add_output(out)
        if comm.size == 1:
            tape.add_block(block)
            return
        with pytest.raises(ReplicationError, match=r"replicated output 0 of <Scale>"):
            tape.add_block(block)
