"""crk.optimize.vector: the free controls as one global vector and as owned blocks."""
import numpy as np
import pytest

import crk
from crk.optimize.vector import ControlLayout


def _controls(comm, split):
    """A scalar, a replicated 2×2 array, a distributed (7, 2) array (uneven pieces) and a
    distributed vector of 2 entries (some ranks' pieces empty)."""
    rows = np.arange(14.0).reshape(7, 2)
    values = [crk.AdjFloat(-1.5), crk.array([[1.0, 2.0], [3.0, 4.0]]),
              crk.array(rows[split(7)], comm=comm, distributed=True),
              crk.array(np.array([10.0, 20.0])[split(2)], comm=comm, distributed=True)]
    return [crk.Control(v) for v in values], values


@pytest.mark.mpi
def test_global_vector_is_the_same_on_every_rank_count(comm, split, assert_replicated):
    with crk.Tape():
        controls, values = _controls(comm, split)
        layout = ControlLayout(controls, range(4), comm)
        plain = [crk.overloaded_type.plain_value(v) for v in values]
        x = layout.gather(plain)
        expected = np.concatenate([[-1.5], [1.0, 2.0, 3.0, 4.0], np.arange(14.0), [10.0, 20.0]])
        np.testing.assert_array_equal(x, expected)
        assert layout.size == 21
        assert_replicated(x)
        back = layout.scatter(x, [None] * 4)
        assert back[0] == -1.5 and isinstance(back[0], float)
        for got, want in zip(back[1:], plain[1:]):
            np.testing.assert_array_equal(got, want)
            assert got.shape == want.shape
        assert [a.tolist() for a in layout.split_global(x)] == \
            [[-1.5], [1.0, 2.0, 3.0, 4.0], list(np.arange(14.0)), [10.0, 20.0]]


@pytest.mark.mpi
def test_owned_blocks_hold_replicated_controls_once(comm, split):
    with crk.Tape():
        controls, values = _controls(comm, split)
        layout = ControlLayout(controls, range(4), comm)
        plain = [crk.overloaded_type.plain_value(v) for v in values]
        block = layout.owned(plain)
        assert block.size == layout.owned_size
        sizes = comm.allgather(layout.owned_size)
        assert sum(sizes) == layout.size                       # nothing stored twice
        start, end = layout.owned_range()
        assert (start, end) == (sum(sizes[:comm.rank]), sum(sizes[:comm.rank + 1]))
        replicated = 5 if comm.rank == 0 else 0
        assert layout.owned_size == replicated + plain[2].size + plain[3].size
        # from the owned blocks, every rank gets rank 0's replicated values
        changed = block.copy()
        if comm.rank == 0:
            changed[0] = 7.0
        back = layout.from_owned(changed, [None] * 4)
        assert back[0] == 7.0
        np.testing.assert_array_equal(back[2], plain[2])


@pytest.mark.mpi
def test_fixed_controls_stay_out(comm, split):
    with crk.Tape():
        controls, values = _controls(comm, split)
        layout = ControlLayout(controls, [1, 3], comm)
        plain = [crk.overloaded_type.plain_value(v) for v in values]
        x = layout.gather(plain)
        np.testing.assert_array_equal(x, [1.0, 2.0, 3.0, 4.0, 10.0, 20.0])
        back = layout.scatter(x + 1.0, plain)
        assert back[0] is plain[0] and back[2] is plain[2]     # fixed: the base values
        np.testing.assert_array_equal(back[1], plain[1] + 1.0)


@pytest.mark.mpi
def test_bounds_per_control(comm, split):
    with crk.Tape():
        controls, _ = _controls(comm, split)
        layout = ControlLayout(controls, range(4), comm)
        rows = np.arange(14.0).reshape(7, 2)
        lower, upper = layout.bounds([(None, 0.0), (-1.0, [[1, 2], [3, 4]]),
                                      (rows[split(7)] - 1.0, None), None])
        np.testing.assert_array_equal(
            lower, np.concatenate([[-np.inf], [-1.0] * 4, np.arange(14.0) - 1.0, [-np.inf] * 2]))
        np.testing.assert_array_equal(
            upper, np.concatenate([[0.0], [1.0, 2.0, 3.0, 4.0], [np.inf] * 16]))
        lo, hi = layout.owned_bounds([(None, 0.0), (-1.0, None), None, (5.0, 6.0)])
        mine = len(range(2)[split(2)])
        assert lo.size == layout.owned_size
        np.testing.assert_array_equal(hi[layout.owned_size - mine:], np.full(mine, 6.0))
