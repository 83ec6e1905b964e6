"""Global indexing of distributed arrays: a table of operations × index expressions, each run
on 1, 2 and 3 ranks with uneven splits (one with an empty rank) and compared with numpy on the
global array and with the serial run: values, gradients, tangents, Hessian actions, Taylor
rates; replicated results bit-identical on every rank. Then the error cases."""
import re

import numpy as np
import pytest

import crk

N = 9
VECTOR = np.linspace(-0.8, 1.1, N)
MATRIX = np.linspace(-0.9, 1.2, 3 * N).reshape(N, 3)


class GlobalMask:
    """A boolean mask given globally in the table; each rank passes its own rows of it."""

    def __init__(self, mask):
        self.mask = np.asarray(mask)


VECTOR_INDEXES = {
    "int": 4, "int-first": 0, "int-last": N - 1, "int-negative": -1, "int-negative-first": -N,
    "slice-from": slice(1, None), "slice-to": slice(None, -1), "slice-middle": slice(2, 7),
    "slice-step": slice(None, None, 2), "slice-offset-step": slice(1, 8, 3),
    "slice-past-end": slice(3, 100), "slice-empty": slice(5, 2),
    "slice-reversed": slice(None, None, -1), "slice-reversed-step": slice(7, 1, -2),
    "slice-reversed-negative": slice(-2, -8, -3),
    "ints": np.array([3, 0, 8, 3]), "ints-sorted": np.array([0, 2, 2, 7]),
    "ints-negative": np.array([-1, -9, 4]), "ints-list": [5, 1], "ints-empty": np.zeros(0, int),
    "mask": GlobalMask(np.arange(N) % 3 != 1), "mask-none": GlobalMask(np.zeros(N, bool)),
    "ellipsis-int": (Ellipsis, 2),
}
MATRIX_INDEXES = {
    "row": 2, "row-negative": -3, "element": (2, 1), "element-negative": (-1, -2),
    "rows-column": (slice(1, None), 0), "column": (slice(None), 1),
    "rows-reversed-columns": (slice(None, None, -2), slice(1, None)),
    "ints-column": (np.array([5, 1, 5]), 2), "row-ints": (3, [2, 0]),
    "mask-column": (GlobalMask(np.arange(N) % 2 == 0), -1), "ellipsis-column": (Ellipsis, 0),
    "newaxis-after": (slice(2, 6), None, 1), "column-ints": (slice(None), [2, 0]),
    "rows-column-ints": (slice(None, 4), [0, 2]),
}


def _global(index):
    """The index as numpy takes it on the global array."""
    if isinstance(index, tuple):
        return tuple(_global(i) for i in index)
    return index.mask if isinstance(index, GlobalMask) else index


def _local(index, rows):
    """The index as a rank passes it: masks cut to its rows."""
    if isinstance(index, tuple):
        return tuple(_local(i, rows) for i in index)
    return index.mask[rows] if isinstance(index, GlobalMask) else index


def _numpy_update(x, index, value, add):
    out = x.copy()
    if add:
        np.add.at(out, index, value)
    else:
        out[index] = value
    return out


def _is_replicated(v):
    return not (isinstance(v, crk.ndarray) and v.distributed)


def _replicated(v):
    return v if _is_replicated(v) else crk.gather(v)


# operation: (crk function of (x, index), numpy function of (x, index))
OPERATIONS = {
    "getitem": (lambda x, i: x[i], lambda x, i: x[i]),
    "gather": (lambda x, i: _replicated(x[i]), lambda x, i: x[i]),
    "at-set": (lambda x, i: x.at[i].set(x[i] ** 2), lambda x, i: _numpy_update(x, i, x[i] ** 2,
                                                                                False)),
    "at-add": (lambda x, i: x.at[i].add(crk.sin(x[i])),
               lambda x, i: _numpy_update(x, i, np.sin(x[i]), True)),
    "at-set-replicated": (lambda x, i: x.at[i].set(0.5 * crk.sum(x)),
                          lambda x, i: _numpy_update(x, i, 0.5 * np.sum(x), False)),
    "at-add-replicated-rows": (lambda x, i: x.at[i].add(_replicated(x[i]) ** 3),
                               lambda x, i: _numpy_update(x, i, x[i] ** 3, True)),
}

# (operation, index) pairs refused on every rank count, with the message
REFUSED = {
    ("at-set", "rows-column-ints"): "supported only for a full or integer axis-0 index",
    ("at-add", "rows-column-ints"): "supported only for a full or integer axis-0 index",
    ("at-set-replicated", "rows-column-ints"): "supported only for a full or integer axis-0",
    ("at-add-replicated-rows", "rows-column-ints"): "supported only for a full or integer",
}

TABLE = [pytest.param(op, data_name, name, index, id=f"{op}-{data_name}-{name}")
         for op in OPERATIONS
         for data_name, indexes in (("vector", VECTOR_INDEXES), ("matrix", MATRIX_INDEXES))
         for name, index in indexes.items()]


@pytest.mark.mpi
@pytest.mark.parametrize("op,data_name,name,index", TABLE)
def test_index_table(op, data_name, name, index, comm, splits, check_against_serial):
    data = VECTOR if data_name == "vector" else MATRIX
    fn, reference = OPERATIONS[op]
    rows = splits(N)
    refused = REFUSED.get((op, name))
    if refused:
        x = crk.array(data[rows], comm=comm, distributed=True)
        with pytest.raises(IndexError, match=refused):
            fn(x, _local(index, rows))
        return
    if isinstance(index, (GlobalMask, tuple)) and any(
            isinstance(i, GlobalMask) for i in (index if isinstance(index, tuple) else (index,))):
        # each rank passes its rows of the mask; the serial run passes the whole mask
        def run(x):
            return fn(x, _local(index, rows if x.comm is comm else slice(None)))
    else:
        def run(x):
            return fn(x, index)
    check_against_serial(run, [data], splits, expected=reference(data, _global(index)))


# -- errors: the same on every rank ----------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("index,message", [
    (N, r"index 9 is out of bounds for axis 0 with size 9 \(the global length of the "
        r"distributed array\)"),
    (-N - 1, r"index -10 is out of bounds for axis 0 with size 9"),
    (np.array([0, N + 3]), r"index 12 is out of bounds for axis 0 with size 9"),
    ([-N - 2], r"index -11 is out of bounds for axis 0 with size 9"),
    (1.5, r"only integers, slices .* are valid indices"),
    (None, r"a new axis \(None\) before axis 0 would move the distributed axis"),
    (np.array([[0, 1]]), r"an integer array indexing the distributed axis 0 must be 1-D"),
    ((0, 0), r"too many indices for array: array is 1-dimensional, but 2 were indexed"),
    ((Ellipsis, 0, Ellipsis), r"an index can only have a single ellipsis"),
])
def test_bad_index_raises_on_every_rank(index, message, comm, splits):
    x = crk.array(VECTOR[splits(N)], comm=comm, distributed=True)
    with pytest.raises(IndexError, match=message):
        x[index]


@pytest.mark.mpi
@pytest.mark.parametrize("index,message", [
    ((np.array([0, 1]), np.array([1, 2])), "together with arrays on other axes"),
    ((np.array([0, 1]), [2]), "together with arrays on other axes"),
    ((1, slice(None), [0]), "must be next to each other"),
    ((slice(None), [0], None, [1]), "must be next to each other"),
    (np.ones((N, 3, 2), bool), "a boolean mask of 3 dimensions spans the distributed axis 0"),
])
def test_index_forms_without_global_meaning_are_refused(index, message, comm, splits):
    A = crk.array(np.ones((N, 3, 2))[splits(N)], comm=comm, distributed=True)
    with pytest.raises(IndexError, match=message):
        A[index]


@pytest.mark.mpi
def test_global_masks_are_refused_and_local_ones_checked(comm, splits):
    rows = splits(N)
    x = crk.array(VECTOR[rows], comm=comm, distributed=True)
    message = r"a mask on the distributed axis 0 must be this rank's part of a distributed mask"
    with pytest.raises(IndexError, match=message):
        x[np.ones(N + 1, bool)]
    if comm.size > 1:      # a global mask: the whole length on every rank
        with pytest.raises(IndexError, match=r"x\[np.flatnonzero\(mask\)\]"):
            x[np.ones(N, bool)]
    np.testing.assert_array_equal(crk.gather(x[np.asarray(x) > 0]).value, VECTOR[VECTOR > 0])


@pytest.mark.mpi
def test_rank_dependent_index_is_caught(comm):
    x = crk.array(VECTOR[:3], comm=comm, distributed=True)
    if comm.size == 1:
        assert float(x[comm.rank]) == VECTOR[0]
        return
    with pytest.raises(ValueError, match="the ranks passed different arguments to a crk integer "
                                         "index of a distributed array"):
        x[comm.rank]
    with pytest.raises(ValueError, match="the ranks passed different arguments"):
        x[[comm.rank + 1, 0]]
    assert float(x[-1]) == VECTOR[2]        # everyone is in step again


@pytest.mark.mpi
def test_local_conversions_of_distributed_arrays_are_refused(comm):
    x = crk.array(VECTOR[:1], comm=comm, distributed=True)
    for convert, what in [(len, "len()"), (list, "iteration"), (float, "float()"),
                          (bool, "bool()"), (lambda v: v.item(), "item()"),
                          (lambda v: v.tolist(), "tolist()")]:
        with pytest.raises(TypeError, match=re.escape(what) + " of a distributed crk.ndarray "
                                                               "would see only this rank's piece"):
            convert(x)
    assert x.global_shape() == (comm.size,)
    assert float(x[0]) == VECTOR[0]


@pytest.mark.mpi
def test_update_values_must_line_up(comm, splits):
    x = crk.array(VECTOR[splits(N)], comm=comm, distributed=True)
    with pytest.raises(ValueError, match=r"the value of x.at\[...\].set\(\) is distributed, so its "
                                         r"axis 0 must line up with the selected rows"):
        x.at[2].set(x[:1])
    with pytest.raises(ValueError, match=r"x.at\[...\] value has 9 rows \(global\) but the index "
                                         r"selects 3"):
        x.at[:3].add(x)
    with pytest.raises(ValueError, match=r"x.at\[...\] value has 2 rows but the index selects 3"):
        x.at[[0, 4, 5]].set(np.ones(2))
    with pytest.raises(ValueError, match=r"x.at\[...\] value has 2 rows but the index selects 4"):
        x.at[[5, 0, 5, 1]].set(crk.array([1.0, 2.0]))
    r = crk.array(VECTOR)
    with pytest.raises(ValueError, match=r"value is distributed but x is replicated"):
        r.at[:3].set(x[:3])
