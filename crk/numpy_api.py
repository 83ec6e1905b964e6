"""The numpy-like functions crk records, and numpy's dispatch into them.

Each function picks the rank-local primitive or, for a distributed array reduced over its
distributed (first) axis, the global one from :mod:`crk.reductions`. ``array_ufunc`` and
``array_function`` route ``np.exp(x)``, ``np.sum(x)``, ... on crk values here.

Distributed arrays are split along axis 0 and mean what the whole global array means: operations
act on each rank's piece where that is the same thing, the reductions over axis 0 (sum, mean,
dot/inner/vdot/matmul contracting axis 0, norm) are global and return replicated values, and
indexing, reshapes, concatenation, roll and diff along axis 0 move rows between ranks
(crk.distributed).
"""

import numpy as np

from . import numpy_rules as R
from . import reductions as G
from .overloaded_type import OverloadedType, plain_value
from .parallel.collective import sum_over_ranks
from .recording import apply


def _shapes():
    from .distributed import shapes     # imports crk.array, which imports this module
    return shapes

def _dist(x):
    return isinstance(x, OverloadedType) and x._ad_distributed

def _ndim(x):
    return np.ndim(plain_value(x))

def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in np.atleast_1d(axis)) if ndim else ()

def sum(x, axis=None, keepdims=False):
    """Sum of entries; over ranks when a distributed array is summed over axis 0."""
    if _dist(x) and (_ndim(x) == 0 or 0 in _axes(axis, _ndim(x))):
        return apply(G.global_sum, (x,), dict(comm=x._ad_comm, axis=axis, keepdims=keepdims))
    return apply(R.local_sum, (x,), dict(axis=axis, keepdims=keepdims))

def mean(x, axis=None, keepdims=False):
    """Mean of entries; for a distributed array over axis 0, the global mean. Collective then."""
    ndim = _ndim(x)
    shape = np.shape(plain_value(x))
    count = int(np.prod([shape[a] for a in _axes(axis, ndim)]))
    if _dist(x) and 0 in _axes(axis, ndim):
        count = int(sum_over_ranks(float(count), x._ad_comm))
    return sum(x, axis=axis, keepdims=keepdims) * (1.0 / count)

def _contract(a, b, name):
    """matmul/dot of a and b with the distribution rules; both at most 2-D for dot."""
    da, db = _dist(a), _dist(b)
    if da and db:
        if _ndim(a) != 1:
            raise ValueError(
                f"crk.{name}: both arguments are distributed, so the contraction must run over "
                f"their distributed axis 0; that needs a 1-D first argument, got {_ndim(a)}-D. "
                f"For a rank-local product make one argument replicated.")
        if _ndim(b) > 2:
            raise ValueError(f"crk.{name}: a distributed second argument must be 1-D or 2-D")
        return apply(G.global_matmul, (a, b), dict(comm=a._ad_comm))
    if db or (da and _ndim(a) == 1 and _ndim(b) >= 1):
        raise ValueError(
            f"crk.{name}: this product contracts the distributed axis 0 of one argument with a "
            f"replicated argument; crk cannot split the replicated one to match. Contract two "
            f"distributed arrays (a global dot), or keep the distributed axis free "
            f"(distributed (n, k) @ replicated (k, m)).")
    return apply(R.matmul, (a, b))

def matmul(a, b):
    """a @ b (global when both are distributed and the distributed axis is contracted)."""
    if _ndim(a) == 0 or _ndim(b) == 0:
        raise ValueError("crk.matmul: matmul does not accept scalars; use *")
    return _contract(a, b, "matmul")

def dot(a, b):
    """np.dot for arrays of at most two dimensions; scalars multiply."""
    if _ndim(a) == 0 or _ndim(b) == 0:
        return apply(R.multiply, (a, b))
    if _ndim(a) > 2 or _ndim(b) > 2:
        raise ValueError("crk.dot: arrays of more than two dimensions are not supported; "
                         "use crk.matmul or reshape")
    return _contract(a, b, "dot")

def inner(a, b):
    """Inner product of 1-D vectors (global for distributed vectors)."""
    if _ndim(a) == 0 or _ndim(b) == 0:
        return apply(R.multiply, (a, b))
    if _ndim(a) != 1 or _ndim(b) != 1:
        raise ValueError("crk.inner: only 1-D vectors are supported")
    return _contract(a, b, "inner")

def vdot(a, b):
    """Inner product of the flattened arrays (global for distributed arrays)."""
    return _contract(ravel(a), ravel(b), "vdot")

def outer(a, b):
    if _dist(a) and _dist(b):
        raise ValueError("crk.outer: at most one argument may be distributed")
    if _dist(b):
        raise ValueError("crk.outer: a distributed second argument would distribute axis 1; "
                         "pass the distributed vector first")
    return apply(R.outer, (a, b))

def norm(x, ord=None, axis=None, keepdims=False):
    """2-norm of a vector / Frobenius norm (over ranks for a distributed array)."""
    if ord not in (None, 2, "fro") or axis is not None or keepdims:
        raise ValueError(f"crk.norm: only the 2-/Frobenius norm over all entries is recorded "
                         f"(got ord={ord!r}, axis={axis!r}, keepdims={keepdims!r})")
    if ord == 2 and _ndim(x) == 2:
        raise ValueError("crk.norm: the spectral norm (ord=2 of a matrix) is not recorded; "
                         "use ord=None for the Frobenius norm")
    comm = x._ad_comm if _dist(x) else None
    return apply(G.norm, (x,), dict(comm=comm))

def reshape(x, shape, order="C"):
    if order != "C":
        raise ValueError("crk.reshape: only order='C' is supported")
    if _dist(x):
        return _shapes().reshape(x, shape)
    return apply(R.reshape, (x,), dict(shape=shape))

def ravel(x, order="C"):
    return reshape(x, (-1,), order)

def squeeze(x, axis=None):
    if _dist(x):
        return _shapes().squeeze(x, axis)
    shape = np.shape(plain_value(x))
    return reshape(x, np.squeeze(np.empty(shape), axis=axis).shape)

def expand_dims(x, axis):
    if _dist(x):
        return _shapes().expand_dims(x, axis)
    shape = np.shape(plain_value(x))
    return reshape(x, np.expand_dims(np.empty(shape), axis).shape)

def transpose(x, axes=None):
    ndim = _ndim(x)
    perm = tuple(range(ndim))[::-1] if axes is None else tuple(a % ndim for a in axes)
    if _dist(x) and ndim > 1 and perm[0] != 0:
        raise ValueError(
            f"crk.transpose: a distributed array must keep its distributed axis 0 first "
            f"(got axes {perm}); transposing would move it")
    return apply(R.transpose, (x,), dict(axes=perm))

def swapaxes(x, axis1, axis2):
    perm = list(range(_ndim(x)))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(x, perm)

def _same_distribution(xs, name):
    kinds = {bool(_dist(x)) for x in xs if isinstance(x, OverloadedType)}
    if len(kinds) > 1 or (True in kinds and not all(isinstance(x, OverloadedType) for x in xs)):
        raise ValueError(f"crk.{name}: cannot mix distributed and replicated arrays")
    return True in kinds

def concatenate(arrays, axis=0):
    """Concatenate; distributed arrays along axis 0 one after the other (global order, see
    crk.distributed.shapes), along other axes piece by piece."""
    arrays = tuple(arrays)
    if _same_distribution(arrays, "concatenate") and axis % _ndim(arrays[0]) == 0:
        return _shapes().concatenate(arrays)
    return apply(R.concatenate, arrays, dict(axis=axis))

def stack(arrays, axis=0):
    arrays = tuple(arrays)
    if _same_distribution(arrays, "stack") and axis % (_ndim(arrays[0]) + 1) == 0:
        raise ValueError("crk.stack: stacking distributed arrays along axis 0 would move their "
                         "distributed axis; use axis=1 or later")
    return apply(R.stack, arrays, dict(axis=axis))

def hstack(arrays):
    arrays = tuple(arrays)
    return concatenate(arrays, axis=0 if _ndim(arrays[0]) == 1 else 1)

def vstack(arrays):
    arrays = tuple(arrays)
    if _ndim(arrays[0]) == 1:
        return stack(arrays, axis=0)
    return concatenate(arrays, axis=0)

def where(condition, x, y):
    if isinstance(condition, OverloadedType):
        raise TypeError("crk.where: the condition must be a plain boolean array, not a recorded "
                        "value; compare np.asarray(x) > 0 to build it")
    return apply(R.where, (np.asarray(condition, dtype=bool), x, y))

def trace(x):
    if _dist(x):
        raise ValueError("crk.trace: not defined for a distributed array")
    return apply(R.trace, (x,))

def copy(x):
    return apply(R.identity, (x,))

# -- numpy dispatch ----------------------------------------------------------------------------
UFUNCS = {
    np.add: R.add, np.subtract: R.subtract, np.multiply: R.multiply, np.true_divide: R.divide,
    np.power: R.power, np.float_power: R.power, np.negative: R.negative, np.remainder: R.mod,
    np.exp: R.exp, np.expm1: R.expm1, np.log: R.log, np.log1p: R.log1p, np.sin: R.sin,
    np.cos: R.cos, np.tan: R.tan, np.sinh: R.sinh, np.cosh: R.cosh, np.tanh: R.tanh,
    np.arctan: R.arctan, np.sqrt: R.sqrt, np.square: R.square, np.reciprocal: R.reciprocal,
    np.absolute: R.absolute, np.maximum: R.maximum, np.minimum: R.minimum,
}
# Piecewise-constant or boolean results: zero derivative, so computed on plain values, unrecorded.
CONSTANT_UFUNCS = {
    np.sign, np.floor, np.ceil, np.rint, np.trunc, np.isfinite, np.isnan, np.isinf, np.signbit,
    np.floor_divide,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
}

def array_ufunc(ufunc, method, inputs, kwargs):
    """Implementation of ``__array_ufunc__`` for crk values."""
    if kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{ufunc.__name__}(..., out=...): crk values are immutable, so in-place "
            f"results cannot be recorded; write y = np.{ufunc.__name__}(...) instead")
    if method != "__call__":
        raise TypeError(f"numpy.{ufunc.__name__}.{method} is not recorded by crk")
    if ufunc in CONSTANT_UFUNCS:
        return ufunc(*[plain_value(x) for x in inputs], **kwargs)
    if kwargs:
        raise TypeError(f"numpy.{ufunc.__name__}: keyword arguments {sorted(kwargs)} are not "
                        f"supported on crk values")
    if ufunc is np.matmul:
        return matmul(*inputs)
    prim = UFUNCS.get(ufunc)
    if prim is None:
        raise TypeError(f"numpy.{ufunc.__name__} is not recorded by crk. Compute it on "
                        f"np.asarray(x) (not differentiated) or write a crk Block for it.")
    return apply(prim, inputs)

def _halo():
    from .distributed import halo       # along the distributed axis 0: a neighbour exchange
    return halo

def _on_values(fn):
    return lambda *args, **kwargs: fn(*[plain_value(a) for a in args],
                                      **{k: plain_value(v) for k, v in kwargs.items()})

FUNCTIONS = {
    np.sum: sum, np.mean: mean, np.dot: dot, np.inner: inner, np.vdot: vdot, np.outer: outer,
    np.linalg.norm: norm, np.reshape: reshape, np.ravel: ravel, np.squeeze: squeeze,
    np.expand_dims: expand_dims, np.transpose: transpose, np.swapaxes: swapaxes,
    np.concatenate: concatenate, np.stack: stack, np.hstack: hstack, np.vstack: vstack,
    np.where: where, np.trace: trace, np.copy: copy,
    np.roll: lambda *a, **k: _halo().roll(*a, **k),
    np.diff: lambda *a, **k: _halo().diff(*a, **k),
}
for _fn in (np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like,
            np.full_like, np.allclose, np.isclose, np.array_equal, np.result_type,
            np.count_nonzero, np.argmax, np.argmin, np.argsort, np.nonzero, np.any, np.all):
    FUNCTIONS[_fn] = _on_values(_fn)

def array_function(func, args, kwargs):
    """Implementation of ``__array_function__`` for crk values."""
    handler = FUNCTIONS.get(func)
    if handler is None:
        raise TypeError(
            f"numpy.{func.__name__} is not recorded by crk for crk values. Recorded: "
            f"{', '.join(sorted(f.__name__ for f in FUNCTIONS))} and the ufuncs. Compute on "
            f"np.asarray(x) (not differentiated) or write a crk Block for it.")
    return handler(*args, **kwargs)

