"""Neighbour shifts along the distributed axis: ``np.roll`` and ``np.diff``.

Both move whole rows across rank boundaries with one exchange between the ranks whose rows
overlap (for a shift smaller than the pieces, the neighbours), so stencils written with numpy
give the serial result on any number of ranks:

* ``np.roll(x, k)`` along axis 0: result row j is ``x[(j - k) % n]``, with ``x``'s layout;
  any ``k``, also larger than a piece or negative;
* ``np.diff(x, n)`` along axis 0: ``x[1:] - x[:-1]``, ``n`` times; each time the rows
  ``x[1:]`` are moved onto the layout of ``x[:-1]`` (which keeps its rows where they are): one
  exchange, one boundary row per rank.

Along other axes (and for replicated arrays) both are compositions of recorded indexing.
"""
import numpy as np

from ..overloaded_type import plain_value, result_types
from .layout import resolve
from .redistribute import record_rowmap
from .rowmap import exchange_from_segments


def _axes(axis, ndim, name):
    try:
        axes = tuple(int(a) for a in np.atleast_1d(axis))
    except (TypeError, ValueError):
        raise TypeError(f"crk.{name}: argument 'axis' must be an int or a tuple of ints, got "
                        f"{axis!r}") from None
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
    return tuple(a % ndim for a in axes)


def _is_distributed(x):
    return isinstance(x, result_types.array) and x._ad_distributed


def roll(x, shift, axis=None):
    """``np.roll(x, shift, axis)`` recorded; along the distributed axis 0 of a distributed
    array a neighbour exchange (collective over ``x.comm``)."""
    ndim = np.ndim(plain_value(x))
    if axis is None:
        if ndim > 1:
            shape = np.shape(plain_value(x))
            return roll(x.ravel(), shift, 0).reshape(
                (-1,) + shape[1:] if _is_distributed(x) else shape)
        axis = 0
    axes = _axes(axis, ndim, "roll")
    shifts = np.broadcast_to(np.asarray(shift), (len(axes),)) if np.ndim(shift) == 0 or \
        len(np.atleast_1d(shift)) == len(axes) else None
    if shifts is None or shifts.dtype.kind not in "iu":
        raise ValueError(f"crk.roll: argument 'shift' must be an int or one int per axis, got "
                         f"{shift!r} for axes {axes}")
    for k, a in zip(shifts, axes):
        x = _roll_axis(x, int(k), a)
    return x


def _roll_axis(x, k, axis):
    if axis == 0 and _is_distributed(x):
        (layout,) = resolve(x)
        n = layout.total
        if n == 0:
            return x.copy()
        k %= n
        segments = [(0, k, n - k), (n - k, 0, k)]
        rowmap = exchange_from_segments(layout, layout, segments, token=k ^ layout.token(),
                                        where="np.roll of a distributed array")
        return record_rowmap(rowmap, x, "roll", True, x._ad_comm, layout)
    n = np.shape(plain_value(x))[axis]
    if n == 0:
        return x.copy()
    index = [slice(None)] * np.ndim(plain_value(x))
    index[axis] = (np.arange(n) - k) % n
    return x[tuple(index)]


def diff(x, n=1, axis=-1, prepend=None, append=None):
    """``np.diff(x, n, axis)`` recorded; along the distributed axis 0 of a distributed array
    one neighbour exchange per order (collective over ``x.comm``)."""
    if prepend is not None or append is not None:
        raise TypeError("crk.diff: prepend= and append= are not supported on crk values; "
                        "concatenate first")
    if int(n) != n or n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    ndim = np.ndim(plain_value(x))
    if ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    (axis,) = _axes(axis, ndim, "diff")
    for _ in range(int(n)):
        x = _diff_once(x, axis)
    return x


def _diff_once(x, axis):
    if axis == 0 and _is_distributed(x):
        (layout,) = resolve(x)
        if layout.total == 0:
            return x[1:]
        lower = x[:-1]                    # rows stay where they are
        target = lower._layout
        rowmap = exchange_from_segments(layout, target, [(1, 0, layout.total - 1)],
                                        token=layout.token(), where="np.diff of a distributed "
                                                                    "array")
        upper = record_rowmap(rowmap, x, "shift", True, x._ad_comm, target)
        return upper - lower
    index_hi = [slice(None)] * np.ndim(plain_value(x))
    index_lo = list(index_hi)
    index_hi[axis], index_lo[axis] = slice(1, None), slice(None, -1)
    return x[tuple(index_hi)] - x[tuple(index_lo)]
