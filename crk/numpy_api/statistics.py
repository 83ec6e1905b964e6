"""Statistics: average (weights), var, std (ddof), median, written with the recorded reductions.

Over the distributed axis 0 of a distributed array average, var and std are global (their sums
and counts run over all ranks; collective) and replicated; the median needs a global sort and is
refused for distributed arrays.
"""
import numpy as np

from .. import numpy_rules as R
from ..recording import apply
from .common import (is_distributed, is_recorded, ndim_of, normalize_axes, plain_value,
                     refuse_distributed, shape_of)
from .reductions import count, mean, sum
from .shape import ravel, reshape, slice_along, sort


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """Weighted mean (a and the weights may be recorded). 1-D weights along ``axis`` apply to
    that axis; over the distributed axis 0 they must be distributed like ``a``."""
    if returned:
        raise TypeError("crk.average: returned=True is not supported on recorded values; "
                        "compute the weight sum with crk.sum(weights)")
    if weights is None:
        return mean(a, axis=axis, keepdims=keepdims)
    if shape_of(weights) == shape_of(a) and is_distributed(weights) == is_distributed(a):
        w, total = weights, sum(weights, axis=axis, keepdims=keepdims)
    else:
        if axis is None or np.ndim(axis) or ndim_of(weights) != 1:
            raise TypeError("crk.average: weights of another shape than 'a' must be 1-D, with "
                            "an integer 'axis' to apply them along")
        axis = axis % ndim_of(a)
        if is_distributed(a) and axis == 0 and not is_distributed(weights):
            refuse_distributed("average", "weights along the distributed axis must be a "
                                          "distributed 1-D array split like 'a'")
        if is_distributed(weights) and not (is_distributed(a) and axis == 0):
            refuse_distributed("average", "distributed weights must run along the distributed "
                                          "axis 0 of a distributed 'a'")
        w = reshape(weights, tuple(-1 if k == axis else 1 for k in range(ndim_of(a))))
        total = sum(weights)
    return sum(a * w, axis=axis, keepdims=keepdims) / total


def var(a, axis=None, ddof=0, keepdims=False):
    """Variance: mean squared deviation from the mean, divided by N - ddof."""
    deviation = a - mean(a, axis=axis, keepdims=True)
    return sum(deviation * deviation, axis=axis, keepdims=keepdims) * \
        (1.0 / (count(a, axis) - ddof))


def std(a, axis=None, ddof=0, keepdims=False):
    """Standard deviation, sqrt(var); at equal samples its derivative is taken as 0."""
    return apply(R.std_root, (var(a, axis=axis, ddof=ddof, keepdims=keepdims),))


def median(a, axis=None, keepdims=False):
    """Median: the middle entry of the sorted values (the mean of the two middle ones for an
    even count); the derivative goes to the selected entries. Replicated arrays only."""
    if is_distributed(a):
        refuse_distributed("median", "the median needs a global sort")
    if is_recorded(axis):
        raise TypeError("crk.median: 'axis' must be a plain integer")
    value = np.asarray(plain_value(a))
    if np.isnan(value).any():
        raise ValueError("crk.median: the input contains NaN, whose median is NaN; remove the "
                         "NaN entries first")
    ndim = value.ndim
    if axis is None:
        kept_shape = (1,) * ndim
        a, axis = ravel(a), 0
    else:
        axes = normalize_axes(axis, ndim)
        if len(axes) != 1:
            raise TypeError("crk.median: only a single integer axis (or None) is supported")
        axis = axes[0]
        kept_shape = tuple(1 if k == axis else s for k, s in enumerate(value.shape))
    n = shape_of(a)[axis]
    if n == 0:
        raise ValueError("crk.median: empty input")
    ordered = sort(a, axis=axis)
    middle = slice_along(ordered, axis, (n - 1) // 2)
    if n % 2 == 0:
        middle = (middle + slice_along(ordered, axis, n // 2)) * 0.5
    return reshape(middle, kept_shape) if keepdims else middle
