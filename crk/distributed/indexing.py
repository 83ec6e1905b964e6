"""Global indexing of distributed arrays: ``x[i]``, ``x[a:b:s]``, ``x[[3, 0]]``, ``x[mask]``,
``A[2, 1]``, and ``x.at[index].set(v)`` / ``.add(v)``.

An index means on a distributed array what it means on the whole global array. Axis 0 is the
distributed one; the index of the other axes applies to every rank's piece as it stands. What
each kind of axis-0 index gives and costs:

=====================================  ==========================================  =============
axis-0 index                           result                                      messages
=====================================  ==========================================  =============
integer (negative too)                 replicated (broadcast from the owning rank) one broadcast
slice, step > 0                        distributed, rows stay where they are       none
slice, step < 0                        distributed, row j on the owner of row j    one exchange
integer array, non-decreasing          distributed, rows stay where they are       none
integer array, other order             distributed, row j on the owner of row j    one exchange
boolean mask                           distributed, rows stay where they are       one allgather
=====================================  ==========================================  =============

("row j on the owner of row j": result row j lives on the rank that holds row j of the indexed
array, so ``x[::-1]`` has ``x``'s layout.) Integer arrays hold *global* row numbers and must be
the same on every rank. A boolean mask is a *distributed* plain mask: each rank passes the mask
of its own rows (what ``np.asarray(x) > 0`` gives); a global mask is refused (use
``x[np.flatnonzero(mask)]``), the allgather checks this and counts the selected rows. For a
replicated result gather it: ``crk.gather(x[2:5])``. Results that keep rows where they are have
layouts differing from their neighbours'; operations combining them realign (crk.distributed.
align), so ``u[1:] - u[:-1]`` costs one neighbour exchange in all.

Out-of-range indices raise IndexError on every rank, with the global bounds. Index forms whose
global meaning is not implemented (a new axis before axis 0, a boolean mask spanning axis 0 and
others, integer arrays on axis 0 combined with arrays on other axes, which numpy pairs up) raise
IndexError saying so, on every rank count.
"""
import zlib

import numpy as np

from .. import numpy_rules as R
from ..overloaded_type import OverloadedType, plain_value
from ..parallel.collective import allgather
from ..primitive import Primitive, defjvp, defneeds, defvjp, needs_nothing
from ..recording import apply
from .layout import Layout, layout_of, resolve
from .redistribute import record_rowmap, redistribute_to, scatter_to
from .rowmap import Gather, exchange_from_pairs

_FULL = slice(None)


# -- reading the index --------------------------------------------------------------------------
def _is_array_index(i):
    return isinstance(i, (list, np.ndarray)) and not (isinstance(i, np.ndarray) and i.ndim == 0
                                                      and i.dtype != bool)


def _axes_used(i):
    if i is None or i is Ellipsis:
        return 0
    if isinstance(i, np.ndarray) and i.dtype == bool:
        return max(i.ndim, 1)
    return 1


def split_index(index, ndim):
    """``(i0, rest)``: the index of the distributed axis 0 and the index of the axes after it
    (Ellipsis expanded). Not collective; raises IndexError for forms refused on distributed
    arrays."""
    if not isinstance(index, tuple):
        index = (index,)
    index = tuple(np.asarray(i) if isinstance(i, list) else i for i in index)
    ellipses = [k for k, i in enumerate(index) if i is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_axes_used(i) for i in index)
    if used > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but {used} "
                         f"were indexed")
    if ellipses:
        k = ellipses[0]
        index = index[:k] + (_FULL,) * (ndim - used) + index[k + 1:]
    if not index:
        return _FULL, ()
    i0, rest = index[0], index[1:]
    if i0 is None:
        raise IndexError("crk: a new axis (None) before axis 0 would move the distributed axis "
                         "of a distributed array; add it after axis 0 (x[:, None])")
    if isinstance(i0, np.ndarray) and i0.dtype == bool and i0.ndim != 1:
        raise IndexError(f"crk: a boolean mask of {i0.ndim} dimensions spans the distributed "
                         f"axis 0 and others; index axis 0 with a 1-D mask")
    if isinstance(i0, np.ndarray) and i0.dtype != bool and i0.ndim > 1:
        raise IndexError(f"crk: an integer array indexing the distributed axis 0 must be 1-D, "
                         f"got shape {i0.shape}")
    _check_rest(i0, rest)
    return i0, rest


def _check_rest(i0, rest):
    """Refuse index forms for which ``x[(i0,) + rest]`` is not ``x[(:,) + rest][i0]``."""
    arrays = [k for k, r in enumerate(rest) if _is_array_index(r)]
    if not arrays:
        return
    if _is_array_index(i0):
        raise IndexError("crk: an integer array or mask on the distributed axis 0 together with "
                         "arrays on other axes (which numpy pairs up element by element) is not "
                         "supported; index axis 0 and the other axes in two steps")
    advanced = [k for k, r in enumerate(rest)
                if _is_array_index(r) or isinstance(r, (int, np.integer))]
    if _is_int(i0):
        advanced = [-1] + advanced
    if advanced != list(range(advanced[0], advanced[0] + len(advanced))) or \
            (_is_int(i0) and advanced[1] != 0):
        raise IndexError("crk: array indices on axes after the distributed axis 0 must be next "
                         "to each other (and, after an integer on axis 0, right after it); "
                         "numpy would move their axes to the front")


def _is_int(i):
    return isinstance(i, (int, np.integer)) and not isinstance(i, bool) or \
        (isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu")


def _is_full(i):
    return isinstance(i, slice) and i == _FULL


def _token(*parts):
    crc = 0
    for p in parts:
        data = p.tobytes() if isinstance(p, np.ndarray) else repr(p).encode()
        crc = zlib.crc32(data, crc)
    return crc


# -- the rows axis-0 index selects ----------------------------------------------------------------
class Rows:
    """The rows of a distributed array an axis-0 index selects, for this rank.

    ``kind``: "full" (every row, in place), "int" (one row, ``row``), "stay" (rows kept where
    they are: ``local`` is this rank's index into its piece, ``layout`` the selection's),
    "moved" (``rows``: global rows in selection order, ``layout``: the selection's, row j on
    the owner of row j). ``token``: a checksum of the index.
    """

    def __init__(self, kind, layout=None, local=None, rows=None, row=None, token=None):
        self.kind, self.layout, self.local = kind, layout, local
        self.rows, self.row, self.token = rows, row, token


def select_rows(x, i0):
    """The :class:`Rows` of distributed crk.ndarray ``x`` selected by axis-0 index ``i0``.
    Collective (resolves ``x``'s layout; a mask costs one allgather); raises IndexError on
    every rank for a bad index."""
    if _is_full(i0):
        return Rows("full")
    if _is_int(i0):
        (layout,) = resolve(x)
        n, i = layout.total, int(i0)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for axis 0 with size {n} (the global "
                             f"length of the distributed array)")
        return Rows("int", row=i % n, token=_token(i, layout.counts))
    if isinstance(i0, slice):
        (layout,) = resolve(x)
        start, stop, step = i0.indices(layout.total)
        if step > 0:
            return _stay(layout, start, stop, step)
        rows = np.arange(start, stop, step, dtype=np.int64)
        return Rows("moved", layout.prefix(len(rows)), rows=rows,
                    token=_token(start, stop, step, layout.counts))
    if isinstance(i0, np.ndarray) and i0.dtype == bool:
        return _mask(x, i0)
    if isinstance(i0, OverloadedType):
        i0 = np.asarray(i0._ad_create_checkpoint())
    index = np.asarray(i0)
    if index.size == 0:
        index = index.astype(np.int64)
    if index.dtype.kind not in "iu":
        raise IndexError("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis "
                         "(`None`) and integer or boolean arrays are valid indices")
    (layout,) = resolve(x)
    n = layout.total
    bad = (index < -n) | (index >= n)
    if bad.any():
        raise IndexError(f"index {int(index[bad][0])} is out of bounds for axis 0 with size {n} "
                         f"(the global length of the distributed array)")
    rows = np.where(index < 0, index + n, index).astype(np.int64)
    if rows.size < 2 or bool(np.all(rows[1:] >= rows[:-1])):
        starts = np.searchsorted(rows, layout.offsets, side="left")
        counts = np.diff(starts)
        rank = _rank(layout.comm)
        local = rows[starts[rank]:starts[rank + 1]] - layout.offsets[rank]
        return Rows("stay", Layout.from_counts(layout.comm, counts), local=local, rows=rows)
    return Rows("moved", layout.prefix(len(rows)), rows=rows, token=_token(rows, layout.counts))


def _rank(comm):
    return 0 if comm is None else comm.rank


def _stay(layout, start, stop, step):
    """Rows start:stop:step (step > 0) kept where they are."""
    m = len(range(start, stop, step))
    offsets = np.asarray(layout.offsets)
    firsts = np.clip(-((start - offsets) // step), 0, m)      # ceil((o - start) / step)
    counts = np.diff(firsts)
    rank = _rank(layout.comm)
    k, c = int(firsts[rank]), int(counts[rank])
    begin = start + k * step - layout.offsets[rank]
    local = slice(begin, begin + (c - 1) * step + 1, step) if c else slice(0, 0)
    return Rows("stay", Layout.from_counts(layout.comm, counts), local=local,
                rows=(start, stop, step))


def _mask(x, mask):
    rows = np.shape(x._value)[0]
    ok = mask.shape == (rows,)
    everyone = allgather((ok, mask.shape, rows, int(mask.sum()) if ok else 0), x._ad_comm)
    if not all(e[0] for e in everyone):
        described = "; ".join(f"rank {r}: mask of shape {shape} for {n} rows"
                              for r, (_, shape, n, _) in enumerate(everyone))
        raise IndexError(
            f"boolean index did not match the distributed array: a mask on the distributed "
            f"axis 0 must be this rank's part of a distributed mask, one entry per row of this "
            f"rank's piece (as np.asarray(x) > 0 gives) ({described}). For a global mask "
            f"(the same on every rank) index with x[np.flatnonzero(mask)]")
    layout = Layout.from_counts(x._ad_comm, [e[3] for e in everyone])
    return Rows("stay", layout, local=mask.copy())


# -- x[index] ----------------------------------------------------------------------------------
def getitem(x, index):
    """``x[index]`` for distributed crk.ndarray ``x``, with global meaning (see the module
    docstring). Recorded; collective over ``x.comm`` unless the index keeps every row."""
    i0, rest = split_index(index, np.ndim(x._value))
    trailing = not all(_is_full(r) for r in rest)
    if trailing:
        x = _local_getitem(x, (_FULL,) + rest, layout_of(x))
    sel = select_rows(x, i0)
    if sel.kind == "full":
        return x if trailing else _local_rows(x, _FULL, layout_of(x))
    if sel.kind == "int":
        return _gather_row(x, sel)
    if sel.kind == "stay":
        return _local_rows(x, sel.local, sel.layout)
    (layout,) = resolve(x)
    rowmap = exchange_from_pairs(layout, sel.layout, sel.rows, np.arange(len(sel.rows)),
                                 token=sel.token, where="a crk index of a distributed array")
    return record_rowmap(rowmap, x, "getitem", True, x._ad_comm, sel.layout)


def _local_getitem(x, index, layout):
    out = apply(R.getitem, (x,), dict(index=index))
    out._layout = layout
    return out


def _put_rows(g, ans, x, rows):
    out = np.zeros(np.shape(x))
    if isinstance(rows, slice) or rows.dtype == bool:
        out[rows] = g                    # each row at most once
    else:
        np.add.at(out, rows, g)
    return out


# Rows of this rank's piece that stay where they are (a slice, sorted ints or a mask): a view or
# a copy of whole rows, whose adjoint puts the rows back (np.add.at only for repeated rows).
take_rows = Primitive("take rows", lambda x, rows: x[rows])
defneeds(take_rows, needs_nothing)
defvjp(take_rows, _put_rows)
defjvp(take_rows, lambda d, ans, x, rows: np.asarray(d)[rows])


def _local_rows(x, rows, layout):
    out = apply(take_rows, (x,), dict(rows=rows))
    out._layout = layout
    return out


def _gather_row(x, sel):
    (layout,) = resolve(x)
    owner = int(layout.owners(np.array([sel.row]))[0])
    rank = _rank(layout.comm)
    counts = [int(r == owner) for r in range(len(layout.counts))]
    src = slice(sel.row - layout.start, sel.row - layout.start + 1) if rank == owner \
        else slice(0, 0)
    rowmap = Gather(layout.comm, src, counts, slice(0, 1), layout.local, 1, squeeze=True,
                    token=sel.token, where="a crk integer index of a distributed array")
    return record_rowmap(rowmap, x, "getitem", False, x._ad_comm)


# -- x.at[index].set(v) / .add(v) ------------------------------------------------------------------
def update(x, index, value, add):
    """``x.at[index].set(value)`` (``add=False``) or ``.add(value)`` for distributed ``x``:
    a new distributed array with ``x``'s layout. Recorded; collective over ``x.comm``.

    ``value`` broadcasts against ``x[index]`` (global shapes). A value with a row axis (as many
    dimensions as ``x[index]``, leading length > 1) gives its rows to the selected rows in
    order: a distributed value is moved to the rows' owners, a replicated one (or a plain numpy
    array, taken as global here) is cut; with a full axis-0 index (``x.at[:, 0]``) a plain
    array is this rank's piece, as in arithmetic. With repeated rows ``set`` keeps the last
    value and ``add`` adds them all.
    """
    ndim = np.ndim(x._value)
    i0, rest = split_index(index, ndim)
    prim = R.index_add if add else R.index_set
    # shape of the selection after axis 0, from an empty piece
    selected = np.empty((0,) + np.shape(x._value)[1:])[(_FULL,) + rest].shape[1:]
    if any(_is_array_index(r) for r in rest) and not _is_full(i0) and not _is_int(i0):
        raise IndexError("crk: x.at[rows, ...] with arrays on the axes after the distributed "
                         "axis 0 is supported only for a full or integer axis-0 index; update "
                         "in two steps")
    sel = select_rows(x, i0)
    row_axis = sel.kind != "int"
    plain = value._ad_create_checkpoint() if isinstance(value, OverloadedType) else value
    lines_up = row_axis and np.ndim(plain) == len(selected) + 1
    if isinstance(value, OverloadedType) and value._ad_distributed:
        if not lines_up:
            raise ValueError(
                f"crk: the value of x.at[...].{'add' if add else 'set'}() is distributed, so its "
                f"axis 0 must line up with the selected rows of x (a value of "
                f"{len(selected) + 1} dimensions); got a value of {np.ndim(plain)} dimensions "
                f"for an index selecting {'rows' if row_axis else 'one row'}. Use a replicated "
                f"value to broadcast")
        has_rows = True
    else:       # a replicated value's leading length is the same on every rank
        has_rows = lines_up and np.shape(plain)[0] != 1
    if sel.kind == "full":
        if has_rows and isinstance(value, OverloadedType) and \
                not (getattr(value, "_layout", None) is not None and value._layout is x._layout):
            (layout,) = resolve(x)
            value = _rows_on(value, layout, None, layout.total)
        return _local_update(prim, x, value, (_FULL,) + rest)
    if sel.kind == "int":
        (layout,) = resolve(x)
        here = layout.start <= sel.row < layout.stop
        local = sel.row - layout.start if here else slice(0, 0)   # elsewhere: no row
        return _local_update(prim, x, value, (local,) + rest)
    selected_rows = sel.layout.total
    order, sel = _in_row_order(sel, x, add)
    if has_rows:
        value = _rows_on(value, sel.layout, order, selected_rows)
    return _local_update(prim, x, value, (sel.local,) + rest)


def _local_update(prim, x, value, index):
    out = apply(prim, (x, value), dict(index=index))
    out._layout = layout_of(x)
    return out


def _in_row_order(sel, x, add):
    """A "stay" selection of the same rows and the order (None: as given) in which the value's
    rows must be taken; for set, repeated rows keep only their last value."""
    if sel.kind == "stay" and (add or sel.rows is None or isinstance(sel.rows, tuple) or
                               len(np.unique(sel.rows)) == len(sel.rows)):
        return None, sel
    rows = sel.rows
    order = np.argsort(rows, kind="stable")
    if not add:                          # last occurrence of each row, in row order
        ordered = rows[order]
        last = np.append(ordered[1:] != ordered[:-1], True)
        order = order[last]
    sorted_rows = rows[order]
    (layout,) = resolve(x)
    starts = np.searchsorted(sorted_rows, layout.offsets, side="left")
    rank = _rank(layout.comm)
    local = sorted_rows[starts[rank]:starts[rank + 1]] - layout.offsets[rank]
    return order, Rows("stay", Layout.from_counts(layout.comm, np.diff(starts)), local=local)


def _rows_on(value, layout, order, expected):
    """The rows of ``value`` (``expected`` of them, taken in ``order``) on ``layout``: a
    distributed crk value is moved, a replicated one or a plain array (global) is cut to this
    rank's rows."""
    distributed = isinstance(value, OverloadedType) and value._ad_distributed
    rows = resolve(value)[0].total if distributed else np.shape(plain_value(value))[0]
    if rows != expected:
        raise ValueError(f"crk: x.at[...] value has {rows} rows{' (global)' if distributed else ''}"
                         f" but the index selects {expected}")
    if order is not None:
        value = value[order]
    if distributed:
        (current,) = resolve(value)
        return value if current.same_as(layout) else redistribute_to(value, layout)
    if isinstance(value, OverloadedType):
        return scatter_to(value, layout)
    return np.asarray(value)[layout.start:layout.stop]
