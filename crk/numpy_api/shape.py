"""Shape operations: reshape, transpose, joining, differences, shifts, flips, sorting.

A distributed array keeps its distributed axis 0 first. Along axis 0, shapes are global:
reshape, squeeze, expand_dims and concatenate, roll, diff and flip move rows between ranks
(crk.distributed.shapes, crk.distributed.halo, global indexing). Operations that would move axis
0 (transposes, stacking along it) or have no global meaning in crk (sort and take_along_axis
along it) are refused for distributed arrays, on every rank count.
"""
import numpy as np

from .. import numpy_rules as R
from ..distributed import halo, shapes as distributed_shapes
from ..recording import apply
from .common import (is_distributed, is_recorded, ndim_of, plain_value,
                     refuse_distributed, refuse_distributed_axis, shape_of)


def reshape(x, shape, order="C"):
    """Reshape (C order). For a distributed array ``shape`` is global (rows move between ranks
    where needed, see crk.distributed.shapes)."""
    if order != "C":
        raise ValueError("crk.reshape: only order='C' is supported")
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    if is_distributed(x) and ndim_of(x) > 0:
        return distributed_shapes.reshape(x, shape)
    return apply(R.reshape, (x,), dict(shape=shape))


def ravel(x, order="C"):
    return reshape(x, (-1,), order)


def squeeze(x, axis=None):
    if is_distributed(x) and ndim_of(x) > 0:
        return distributed_shapes.squeeze(x, axis)
    return reshape(x, np.squeeze(np.empty(shape_of(x)), axis=axis).shape)


def expand_dims(x, axis):
    if is_distributed(x) and ndim_of(x) > 0:
        return distributed_shapes.expand_dims(x, axis)
    return reshape(x, np.expand_dims(np.empty(shape_of(x)), axis).shape)


def transpose(x, axes=None):
    ndim = ndim_of(x)
    perm = tuple(range(ndim))[::-1] if axes is None else tuple(a % ndim for a in axes)
    if is_distributed(x) and ndim > 1 and perm[0] != 0:
        raise ValueError(
            f"crk.transpose: a distributed array must keep its distributed axis 0 first "
            f"(got axes {perm}); transposing would move it")
    return apply(R.transpose, (x,), dict(axes=perm))


def swapaxes(x, axis1, axis2):
    ndim = ndim_of(x)
    for axis in (axis1, axis2):
        if not -ndim <= axis < ndim:
            raise ValueError(f"crk.swapaxes: axis {axis} is out of bounds for a {ndim}-d array")
    perm = list(range(ndim))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(x, perm)


def moveaxis(x, source, destination):
    ndim = ndim_of(x)
    for axis in list(np.atleast_1d(source)) + list(np.atleast_1d(destination)):
        if not -ndim <= axis < ndim:
            raise ValueError(f"crk.moveaxis: axis {axis} is out of bounds for a {ndim}-d array")
    source = [a % ndim for a in np.atleast_1d(source)]
    destination = [a % ndim for a in np.atleast_1d(destination)]
    order = [a for a in range(ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(x, order)


def _joined_distribution(arrays, name):
    """Whether the arrays are distributed (all or none)."""
    kinds = {bool(is_distributed(x)) for x in arrays if is_recorded(x)}
    if len(kinds) > 1 or (True in kinds and not all(is_recorded(x) for x in arrays)):
        raise ValueError(f"crk.{name}: cannot mix distributed and replicated arrays")
    return True in kinds


def concatenate(arrays, axis=0):
    """Concatenate; distributed arrays along axis 0 one after the other in global order
    (crk.distributed.shapes), along other axes piece by piece."""
    arrays = tuple(arrays)
    if _joined_distribution(arrays, "concatenate") and \
            axis % max(ndim_of(arrays[0]), 1) == 0:
        return distributed_shapes.concatenate(arrays)
    return apply(R.concatenate, arrays, dict(axis=axis))


def stack(arrays, axis=0):
    arrays = tuple(arrays)
    if _joined_distribution(arrays, "stack") and axis % (ndim_of(arrays[0]) + 1) == 0:
        raise ValueError(
            f"crk.stack: stacking distributed arrays along axis 0 would move their "
            f"distributed axis to axis 1; use axis=1 or later")
    return apply(R.stack, arrays, dict(axis=axis))


def _at_least(x, ndim):
    """x with leading (1-D: trailing for numpy.atleast_2d of a vector) axes of length one."""
    shape = shape_of(x)
    if len(shape) >= ndim:
        return x
    return reshape(x, (1,) * (ndim - len(shape)) + shape if shape or ndim == 1 else (1, 1))


def hstack(arrays):
    arrays = tuple(_at_least(x, 1) for x in arrays)
    return concatenate(arrays, axis=0 if ndim_of(arrays[0]) == 1 else 1)


def vstack(arrays):
    return concatenate(tuple(_at_least(x, 2) for x in arrays), axis=0)


def copy(x):
    return apply(R.identity, (x,))


def broadcast_to(x, shape):
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    if is_distributed(x):
        refuse_distributed("broadcast_to", "a broadcast shape is global, the pieces are not")
    return apply(R.broadcast_to, (x,), dict(shape=shape))


# -- along one axis -----------------------------------------------------------------------------
def _axis_of(name, x, axis):
    """``axis`` normalised; refused when it is the distributed axis 0 (None: flattened)."""
    ndim = ndim_of(x)
    if axis is None:
        if is_distributed(x):
            refuse_distributed_axis(name, axis)
        return axis
    if ndim == 0:
        raise ValueError(f"crk.{name}: axis {axis} is out of bounds for a 0-d value")
    if is_distributed(x) and axis % ndim == 0:
        refuse_distributed_axis(name, axis)
    return axis % ndim


def slice_along(x, axis, index):
    """x[..., index, ...] with ``index`` (a slice or an int) at ``axis`` (recorded)."""
    full = [slice(None)] * ndim_of(x)
    full[axis] = index
    return apply(R.getitem, (x,), dict(index=tuple(full)))


def diff(a, n=1, axis=-1, prepend=None, append=None):
    """n-th forward differences along ``axis``; along a distributed axis 0 one neighbour
    exchange per order (crk.distributed.halo)."""
    if ndim_of(a) == 0:
        raise ValueError("crk.diff: diff requires an input that is at least one dimensional")
    if is_distributed(a) and axis is not None and axis % ndim_of(a) == 0:
        return halo.diff(a, n, 0, prepend, append)
    axis = _axis_of("diff", a, axis)
    if prepend is not None or append is not None:
        pieces = [p for p in (prepend, a, append) if p is not None]
        shape = list(shape_of(a))
        shape[axis] = 1
        pieces = [p if ndim_of(p) else np.broadcast_to(p, shape) for p in pieces]
        a = concatenate(pieces, axis=axis)
    if n == 0:
        return a
    return apply(R.diff, (a,), dict(n=n, axis=axis))


def roll(a, shift, axis=None):
    """Shift entries cyclically along ``axis`` (None: the flattened array); along a
    distributed axis 0 a neighbour exchange (crk.distributed.halo)."""
    if is_distributed(a) and (axis is None or
                              0 in {int(ax) % max(ndim_of(a), 1) for ax in np.atleast_1d(axis)}):
        return halo.roll(a, shift, axis)
    if axis is None:
        _axis_of("roll", a, None)
    else:
        for ax in np.atleast_1d(axis):
            _axis_of("roll", a, int(ax))
    shift = tuple(int(s) for s in shift) if np.ndim(shift) else int(shift)
    axis = tuple(int(ax) for ax in axis) if np.ndim(axis) else axis
    return apply(R.roll, (a,), dict(shift=shift, axis=axis))


def flip(a, axis=None):
    """Reverse the order of entries along ``axis`` (None: all axes); along a distributed axis
    0 by global indexing (rows move between ranks)."""
    ndim = ndim_of(a)
    if ndim == 0 and axis is None:
        return copy(a)
    axes = range(ndim) if axis is None else [int(ax) % ndim for ax in np.atleast_1d(axis)]
    index = [slice(None)] * ndim
    for ax in axes:
        index[ax] = slice(None, None, -1)
    if is_distributed(a):
        return a[tuple(index)]          # global indexing (crk.distributed.indexing)
    return apply(R.getitem, (a,), dict(index=tuple(index)))


def _along_axis_index(indices, shape, axis):
    """The fancy index that take_along_axis(x, indices, axis) applies to x."""
    ndim = len(shape)
    index = []
    for dim in range(ndim):
        if dim == axis:
            index.append(indices)
        else:
            grid = [1] * ndim
            grid[dim] = shape[dim]
            index.append(np.arange(shape[dim]).reshape(grid))
    frozen = []
    for part in index:
        part = np.array(part)
        part.flags.writeable = False        # the tape keeps it
        frozen.append(part)
    return tuple(frozen)


def take_along_axis(arr, indices, axis):
    """numpy.take_along_axis with plain integer ``indices`` (not along a distributed axis 0)."""
    if is_recorded(indices):
        raise TypeError("crk.take_along_axis: argument 'indices' must be plain integers, not a "
                        "recorded value")
    if axis is None:
        _axis_of("take_along_axis", arr, None)
        arr, axis = ravel(arr), 0
    axis = _axis_of("take_along_axis", arr, axis)
    indices = np.asarray(indices)
    if indices.ndim != ndim_of(arr):
        raise ValueError(f"crk.take_along_axis: 'indices' has {indices.ndim} dimensions, "
                         f"'arr' has {ndim_of(arr)}; they must match")
    index = _along_axis_index(indices, shape_of(arr), axis)
    return apply(R.getitem, (arr,), dict(index=index))


def sort(a, axis=-1, kind=None, order=None):
    """Sorted copy: a recorded selection (equal entries keep their order; each output entry's
    derivative is that of the input entry it came from). Not along a distributed axis 0."""
    if order is not None:
        raise TypeError("crk.sort: argument 'order' (structured arrays) is not supported")
    if axis is None:
        _axis_of("sort", a, None)
        a, axis = ravel(a), 0
    axis = _axis_of("sort", a, axis)
    order = np.argsort(plain_value(a), axis=axis, kind="stable")
    return take_along_axis(a, order, axis)
