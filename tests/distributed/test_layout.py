"""Layouts and the cost of global indexing: one allgather to learn a layout (shared by every
array with the same rows), then at most one broadcast or one exchange per operation."""
import numpy as np
import pytest

import crk
from crk.distributed import indexing, layout as layout_module, rowmap
from crk.distributed.layout import Layout, balanced, resolve

N = 11


@pytest.fixture
def messages(monkeypatch):
    """The crk collectives run by distributed-array operations, by name, as they happen."""
    calls = []

    def spy(module, name):
        original = getattr(module, name)

        def counted(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, counted)

    for module, name in [(layout_module, "allgather"), (indexing, "allgather"),
                         (rowmap, "exchange_rows"), (rowmap, "broadcast_rows"),
                         (rowmap, "allgather_rows")]:
        spy(module, name)
    return calls


@pytest.mark.mpi
def test_a_layout_is_learnt_once_and_shared(comm, split, messages):
    x = crk.array(np.arange(N, dtype=float)[split(N)], comm=comm, distributed=True)
    y = np.sin(x) * 2.0 + x
    assert y._layout is x._layout and not x._layout.resolved
    y[2:]
    assert messages == ["allgather"]
    assert x._layout.resolved and x._layout.total == N
    del messages[:]
    x[3:], (y * x)[::2], y[:, None][1:]
    assert messages == []


# A shift between two layouts that happen to be equal (one rank, or rows only on one rank) needs
# no message at all.
_AT_MOST_ONE_EXCHANGE = ([], ["exchange_rows"])


@pytest.mark.mpi
@pytest.mark.parametrize("name,operation,allowed", [
    ("slice", lambda x: x[1:], ([],)),
    ("strided-slice", lambda x: x[1::3], ([],)),
    ("sorted-ints", lambda x: x[[0, 4, 4, 9]], ([],)),
    ("int", lambda x: x[-1], (["broadcast_rows"],)),
    ("element", lambda x: x[:, None][4, 0], (["broadcast_rows"],)),
    ("reversed", lambda x: x[::-1], (["exchange_rows"],)),
    ("ints", lambda x: x[[5, 0]], (["exchange_rows"],)),
    ("mask", lambda x: x[np.asarray(x) > 3], (["allgather"],)),
    ("shifted-difference", lambda x: x[1:] - x[:-1], _AT_MOST_ONE_EXCHANGE),
    ("diff", lambda x: np.diff(x), (["exchange_rows"],)),
    ("roll", lambda x: np.roll(x, 1), (["exchange_rows"],)),
    ("gather", lambda x: crk.gather(x), (["allgather_rows"],)),
    ("scatter", lambda x: crk.scatter(crk.array(np.ones(N)), comm=x.comm), ([],)),
])
def test_each_operation_costs_at_most_one_message(name, operation, allowed, comm, splits,
                                                  messages):
    x = crk.array(np.arange(N, dtype=float)[splits(N)], comm=comm, distributed=True)
    resolve(x)
    del messages[:]
    operation(x)
    assert messages in allowed


@pytest.mark.mpi
def test_a_shift_talks_to_neighbours_only(comm, splits):
    """In u[1:] - u[:-1] each rank sends at most one row, to the nearest rank holding rows."""
    with crk.Tape() as tape:
        x = crk.array(np.arange(N, dtype=float)[splits(N)], comm=comm, distributed=True)
        x[1:] - x[:-1]
        plans = [b.rowmap for b in tape.get_blocks() if isinstance(b, rowmap.RowMapBlock)]
    holders = [r for r, rows in enumerate(comm.allgather(len(x.value))) if rows]
    for plan in plans:
        assert len(plan.sends) <= 1 and len(plan.recvs) <= 1
        for rank, rows in plan.sends + plan.recvs:
            assert len(np.arange(N)[rows]) == 1
            assert abs(holders.index(rank) - holders.index(comm.rank)) == 1


def test_layout_arithmetic():
    layout = Layout.from_counts(None, [4, 0, 3])
    assert layout.offsets == (0, 4, 4, 7) and layout.total == 7
    np.testing.assert_array_equal(layout.owners(np.array([0, 3, 4, 6])), [0, 0, 2, 2])
    assert layout.prefix(5).counts == (4, 0, 1)
    assert layout.prefix(9).counts == (4, 0, 5)
    assert layout.scaled(3).counts == (12, 0, 9)
    assert layout.same_as(Layout.from_counts(None, [4, 0, 3]))
    assert not layout.same_as(Layout.from_counts(None, [3, 1, 3]))
    assert balanced(None, 5).counts == (5,)


@pytest.mark.mpi
def test_pieces_with_different_trailing_shapes_are_refused(comm):
    piece = np.ones((2, 3)) if comm.rank == 0 else np.ones((0,))
    x = crk.array(piece, comm=comm, distributed=True)
    if comm.size == 1:
        assert x.global_shape() == (2, 3)
        return
    with pytest.raises(ValueError, match=r"the pieces of a distributed array must have the same "
                                         r"shape after axis 0 on every rank, got rank 0: "
                                         r"\(2, 3\), rank 1: \(0,\)"):
        x[1:]


@pytest.mark.mpi
def test_distributed_scalars_are_refused(comm):
    with pytest.raises(ValueError, match=r"crk.array\(\): argument 'values' is this rank's piece "
                                         r"of a distributed array and needs at least one "
                                         r"dimension"):
        crk.array(3.0, comm=comm, distributed=True)
