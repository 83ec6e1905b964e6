"""Shape operations of distributed arrays with global meaning: reshape, squeeze, expand_dims,
and concatenation along the distributed axis 0.

Shapes given by the user are global (``x.reshape(-1, 2)`` pairs up consecutive entries of the
whole array). A reshape that only regroups the entries of each row (``(n, 4) -> (n, 2, 2)``,
``ravel``) is done piece by piece; one that regroups entries across rows
(``(n,) -> (n/2, 2)``) needs each rank's entries to make whole new rows, and when a split
does not, the entries at the boundaries are moved to a neighbour first (one exchange).
Squeezing a distributed axis 0 of global length 1 gives a replicated array (a gather); adding
an axis before axis 0 would move the distributed axis and is refused.

``concatenate`` along axis 0 joins the global arrays one after the other; the result holds, on
each rank, as many rows as the inputs did there together (one exchange per input).
"""
import numpy as np

from ..recording import apply
from .. import numpy_rules as R
from .layout import Layout, layout_of, resolve
from .redistribute import gather, record_rowmap, redistribute_to
from .rowmap import exchange_from_segments


def _local_reshape(x, shape, layout):
    out = apply(R.reshape, (x,), dict(shape=tuple(int(d) for d in shape)))
    out._layout = layout
    return out


def _normalised(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"crk.reshape: argument 'shape' must be an int or a tuple of ints, got "
                        f"{shape!r}") from None


def reshape(x, shape):
    """``np.reshape(x, shape)`` of distributed ``x``, ``shape`` global. Recorded; collective
    over ``x.comm`` unless ``shape`` starts with -1 and each row's entries make whole rows."""
    shape = _normalised(shape)
    piece = np.shape(x._value)
    row_old = int(np.prod(piece[1:], dtype=np.int64))
    if not shape:
        raise ValueError("crk.reshape: a distributed array cannot be reshaped to a 0-d value "
                         "(its distributed axis would go); gather it first")
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    trailing = shape[1:]
    layout = layout_of(x)
    if -1 in trailing or shape[0] != -1:
        (layout,) = resolve(x)
        size = layout.total * row_old
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if (-1 in shape and (known == 0 or size % known)) or \
                (-1 not in shape and known != size):
            raise ValueError(f"cannot reshape array of size {size} into shape {shape} (global "
                             f"shapes: the distributed array is "
                             f"{(layout.total,) + piece[1:]})")
        trailing = tuple(size // known if d == -1 else d for d in trailing)
    row_new = int(np.prod(trailing, dtype=np.int64))
    if row_old == 0 or row_new == 0:
        raise ValueError(f"crk.reshape: rows of zero entries cannot be regrouped across a "
                         f"distributed axis (piece shape {piece}, target {shape})")
    if row_old % row_new == 0:          # every row becomes whole new rows
        factor = row_old // row_new
        new = layout.scaled(factor) if layout.resolved else None
        return _local_reshape(x, (piece[0] * factor,) + trailing, new)
    (layout,) = resolve(x)
    entries = [c * row_old for c in layout.counts]
    size = sum(entries)
    if size % row_new:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape} (global shapes: "
                         f"the distributed array is {(layout.total,) + piece[1:]})")
    if all(e % row_new == 0 for e in entries):
        new = Layout.from_counts(layout.comm, [e // row_new for e in entries])
        return _local_reshape(x, (new.local,) + trailing, new)
    # Snap each rank's entries to whole new rows: move the boundary entries to a neighbour.
    flat = _local_reshape(x, (piece[0] * row_old,), layout.scaled(row_old))
    starts = np.asarray(flat._layout.offsets) // row_new
    starts[-1] = size // row_new
    rows = Layout.from_counts(layout.comm, np.diff(starts))
    moved = redistribute_to(flat, rows.scaled(row_new))
    return _local_reshape(moved, (rows.local,) + trailing, rows)


def squeeze(x, axis=None):
    """``np.squeeze`` of distributed ``x``: axes after 0 piece by piece; axis 0 (when
    ``axis`` is None and the global length is 1) by gathering to a replicated array."""
    piece = np.shape(x._value)
    if axis is None:
        (layout,) = resolve(x)
        if layout.total == 1:
            whole = gather(x)
            return apply(R.reshape, (whole,),
                         dict(shape=np.squeeze(np.empty(np.shape(whole._value))).shape))
        axes = tuple(a for a in range(1, len(piece)) if piece[a] == 1)
    else:
        axes = tuple(int(a) % len(piece) for a in np.atleast_1d(axis))
        if 0 in axes:
            raise ValueError("crk.squeeze: axis 0 of a distributed array is its distributed "
                             "axis; gather the array to squeeze it")
        if any(piece[a] != 1 for a in axes):
            raise ValueError("cannot select an axis to squeeze out which has size not equal "
                             "to one")
    shape = tuple(d for a, d in enumerate(piece) if a not in axes)
    return _local_reshape(x, shape, layout_of(x))


def expand_dims(x, axis):
    """``np.expand_dims`` of distributed ``x`` (not before axis 0)."""
    piece = np.shape(x._value)
    ndim = len(piece) + len(np.atleast_1d(axis))
    axes = sorted(int(a) % ndim for a in np.atleast_1d(axis))
    if 0 in axes:
        raise ValueError("crk.expand_dims: a new axis 0 would move the distributed axis of a "
                         "distributed array; add it after axis 0")
    shape = list(piece)
    for a in axes:
        shape.insert(a, 1)
    return _local_reshape(x, shape, layout_of(x))


def concatenate(arrays):
    """Distributed ``arrays`` joined along axis 0 (global order). Recorded; collective."""
    comm = arrays[0]._ad_comm
    np.concatenate([np.empty((0,) + np.shape(a._value)[1:]) for a in arrays])  # numpy's checks
    layouts = resolve(*arrays)
    counts = np.sum([lay.counts for lay in layouts], axis=0)
    target = Layout.from_counts(comm, counts)
    parts, offset = [], 0
    for a, layout in zip(arrays, layouts):
        rowmap = exchange_from_segments(layout, target, [(0, offset, layout.total)],
                                        token=target.token(), where="crk.concatenate")
        parts.append(record_rowmap(rowmap, a, "concatenate", True, comm, target))
        offset += layout.total
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out
