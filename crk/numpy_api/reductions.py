"""Reductions and scans: sum, mean, prod, max/min, ptp, cumsum, trapezoid.

Over the distributed axis 0 of a distributed array they are global (collective) and give
replicated results, except cumsum, whose result stays distributed (a global prefix scan).
Over other axes they act on each rank's piece.
"""
import numpy as np

from .. import numpy_rules as R
from ..parallel.collective import sum_over_ranks
from ..recording import apply
from .common import (is_distributed, ndim_of, normalize_axes, over_distributed_axis,
                     refuse_distributed_axis, shape_of)
from .shape import diff, ravel, reshape, slice_along


def sum(x, axis=None, keepdims=False):
    """Sum of entries; over ranks when a distributed array is summed over axis 0 (collective)."""
    if over_distributed_axis(x, axis):
        return apply(R.global_sum, (x,), dict(comm=x._ad_comm, axis=axis, keepdims=keepdims))
    return apply(R.local_sum, (x,), dict(axis=axis, keepdims=keepdims))


def count(x, axis):
    """How many entries a reduction over ``axis`` takes (globally; collective for a distributed
    array reduced over axis 0)."""
    shape = shape_of(x)
    n = int(np.prod([shape[a] for a in normalize_axes(axis, len(shape))]))
    if over_distributed_axis(x, axis):
        n = int(sum_over_ranks(float(n), x._ad_comm))
    return n


def mean(x, axis=None, keepdims=False):
    """Mean of entries; for a distributed array over axis 0, the global mean. Collective then."""
    return sum(x, axis=axis, keepdims=keepdims) * (1.0 / count(x, axis))


def _over_ranks(x, axis, keepdims, local, name, identity=None):
    """A reduction ``local`` (a selection or a product) over the distributed axis: each rank
    reduces its piece, the partial results are gathered into a replicated array (one row per
    rank), and that is reduced again, the same way on every rank. Collective."""
    if ndim_of(x) == 0:
        x, axis = reshape(x, (1,)), None
    shape = shape_of(x)
    axes = normalize_axes(axis, len(shape))
    options = dict(axis=axes, keepdims=True)
    if identity is not None:            # an empty piece contributes the identity
        options["initial"] = identity
        if count(x, axes) == 0:
            raise ValueError(f"crk.{name}: zero-size array to reduction operation {name}, "
                             f"which has no identity (the distributed array is empty)")
    piece = apply(local, (x,), options)
    rows = apply(R.gather_pieces, (piece,), dict(comm=x._ad_comm))
    out = apply(local, (rows,), dict(axis=(0,), keepdims=True))
    if keepdims:
        return out
    return reshape(out, tuple(s for a, s in enumerate(shape) if a not in axes))


def _extreme(x, axis, keepdims, minimum):
    prim, name = (R.local_min, "min") if minimum else (R.local_max, "max")
    if over_distributed_axis(x, axis):
        return _over_ranks(x, axis, keepdims, prim, name, np.inf if minimum else -np.inf)
    return apply(prim, (x,), dict(axis=axis, keepdims=keepdims))


def max(x, axis=None, keepdims=False):
    """Maximum; the derivative goes to the first maximal entry (the one argmax returns), over
    all ranks for a distributed array reduced over axis 0 (collective then)."""
    return _extreme(x, axis, keepdims, minimum=False)


def min(x, axis=None, keepdims=False):
    """Minimum; the derivative goes to the first minimal entry (the one argmin returns)."""
    return _extreme(x, axis, keepdims, minimum=True)


def ptp(x, axis=None, keepdims=False):
    """max - min (each selection's derivative to its first occurrence)."""
    return max(x, axis, keepdims) - min(x, axis, keepdims)


def prod(x, axis=None, keepdims=False):
    """Product of entries (global over the distributed axis 0; collective then). Its
    derivative multiplies the other entries, so zeros are fine."""
    if over_distributed_axis(x, axis):
        return _over_ranks(x, axis, keepdims, R.local_prod, "prod")
    return apply(R.local_prod, (x,), dict(axis=axis, keepdims=keepdims))


def cumsum(x, axis=None):
    """Cumulative sum (axis None: of the flattened array). Along the distributed axis 0 each
    rank's piece is offset by the totals of the ranks before it (collective); the result stays
    distributed."""
    if is_distributed(x):
        if axis is None or ndim_of(x) == 0:
            x, axis = ravel(x), 0
        if axis % ndim_of(x) == 0:
            return apply(R.cumsum_over_ranks, (x,), dict(comm=x._ad_comm))
    return apply(R.local_cumsum, (x,), dict(axis=axis))


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The trapezoidal rule along ``axis`` (y and the sample points x may be recorded)."""
    ndim = ndim_of(y)
    if ndim == 0:
        raise ValueError("crk.trapezoid: y must have at least one dimension")
    axis = axis % ndim
    if is_distributed(y) and axis == 0:
        refuse_distributed_axis("trapezoid", axis)
    if x is None:
        d = dx
    elif ndim_of(x) == 1:
        if is_distributed(x):
            refuse_distributed_axis("trapezoid", 0)
        d = diff(x)
        if ndim > 1:
            d = reshape(d, tuple(-1 if a == axis else 1 for a in range(ndim)))
    else:
        d = diff(x, axis=axis)
    upper, lower = slice_along(y, axis, slice(1, None)), slice_along(y, axis, slice(None, -1))
    return sum(d * (upper + lower) * 0.5, axis=axis)
