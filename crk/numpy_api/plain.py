"""numpy functions whose results are plain (unrecorded) values, and their distributed meaning.

Their results are integers, booleans, shapes, fresh constants, or piecewise-constant values
whose derivative is zero almost everywhere (round, fix): nothing to differentiate, so they are
computed on plain values and returned as plain numpy values. Over the distributed axis 0 of a
distributed array the reductions among them are global (collective) and replicated; those with
no global meaning implemented are refused.
"""
import numpy as np

from ..parallel.collective import argmax_over_ranks, exclusive_scan, sum_over_ranks
from .common import (is_distributed, ndim_of, over_distributed_axis, plain_value,
                     refuse_distributed)


def on_values(fn):
    """``fn`` applied to the plain values of its arguments (elementwise or shape queries)."""
    def plain_fn(*args, **kwargs):
        return fn(*[plain_value(a) for a in args],
                  **{k: plain_value(v) for k, v in kwargs.items()})
    plain_fn.__name__ = fn.__name__
    plain_fn.__doc__ = f"numpy.{fn.__name__} on the plain values (a plain result)."
    return plain_fn


def local_only(fn):
    """``fn`` on plain values, refused for distributed arrays (its result would be local)."""
    def plain_fn(*args, **kwargs):
        if any(is_distributed(a) for a in list(args) + list(kwargs.values())):
            refuse_distributed(fn.__name__, "its result (indices into the whole array) would "
                                            "need a global sort or search")
        return on_values(fn)(*args, **kwargs)
    plain_fn.__name__ = fn.__name__
    plain_fn.__doc__ = f"numpy.{fn.__name__} on plain values; refused for distributed arrays."
    return plain_fn


def _comm_of(*values):
    return next(v._ad_comm for v in values if is_distributed(v))


def _arg_extreme(a, axis, keepdims, minimum):
    """argmax/argmin; over the distributed axis 0, global indices (ties: the lowest global
    index, NaN first, as numpy), identical on every rank. Collective then."""
    fn = np.argmin if minimum else np.argmax
    value = np.asarray(plain_value(a))
    ndim = value.ndim
    if not is_distributed(a) or (axis is not None and ndim and axis % ndim != 0):
        return fn(value, axis=axis, keepdims=keepdims)
    comm = a._ad_comm
    if ndim == 0:
        value, ndim = value.reshape(1), 1
    if axis is None and ndim > 1:       # the flattened array: rows stay contiguous
        value = value.reshape(-1)
    offset = int(exclusive_scan(float(len(value)), comm))
    if len(value):
        local = fn(value, axis=0)
        best = np.take_along_axis(value, np.expand_dims(local, 0), axis=0)[0]
        index = local + offset
    else:
        best = np.full(value.shape[1:], np.nan)
        index = np.full(value.shape[1:], -1)
    result = argmax_over_ranks(best, index, comm, minimum=minimum)
    if np.any(result < 0):
        raise ValueError(f"crk.{fn.__name__}: attempt to get {fn.__name__} of an empty "
                         f"sequence (the distributed array is empty)")
    if keepdims:
        result = np.reshape(result, (1,) * ndim_of(a)) if axis is None else result[None]
    return result if np.ndim(result) else result.item()


def argmax(a, axis=None, keepdims=False):
    return _arg_extreme(a, axis, keepdims, minimum=False)


def argmin(a, axis=None, keepdims=False):
    return _arg_extreme(a, axis, keepdims, minimum=True)


def any_(a, axis=None, keepdims=False):
    """Whether any entry is true (over all ranks for the distributed axis; collective then)."""
    local = np.any(plain_value(a), axis=axis, keepdims=keepdims)
    if not over_distributed_axis(a, axis):
        return local
    return np.asarray(sum_over_ranks(np.asarray(local, dtype=np.float64), a._ad_comm)) > 0


def all_(a, axis=None, keepdims=False):
    """Whether every entry is true (over all ranks for the distributed axis; collective then)."""
    local = np.all(plain_value(a), axis=axis, keepdims=keepdims)
    if not over_distributed_axis(a, axis):
        return local
    return np.asarray(sum_over_ranks(np.asarray(~local, dtype=np.float64), a._ad_comm)) == 0


def count_nonzero(a, axis=None, keepdims=False):
    """Number of nonzero entries (over all ranks for the distributed axis; collective then)."""
    local = np.count_nonzero(plain_value(a), axis=axis, keepdims=keepdims)
    if not over_distributed_axis(a, axis):
        return local
    out = np.asarray(sum_over_ranks(np.asarray(local, dtype=np.float64), a._ad_comm))
    return out.astype(np.int64) if out.ndim else int(out)


def _all_ranks(local, *values):
    """A local verdict made global (true on every rank) when a value is distributed."""
    if not any(is_distributed(v) for v in values):
        return local
    return sum_over_ranks(0.0 if local else 1.0, _comm_of(*values)) == 0.0


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy.allclose (over all ranks for distributed arrays; collective then)."""
    local = bool(np.allclose(plain_value(a), plain_value(b), rtol=rtol, atol=atol,
                             equal_nan=equal_nan))
    return _all_ranks(local, a, b)


def array_equal(a1, a2, equal_nan=False):
    """numpy.array_equal (over all ranks for distributed arrays; collective then)."""
    local = bool(np.array_equal(plain_value(a1), plain_value(a2), equal_nan=equal_nan))
    return _all_ranks(local, a1, a2)


def imag(x):
    """crk values are real: zeros (a plain constant)."""
    return np.zeros_like(plain_value(x))
