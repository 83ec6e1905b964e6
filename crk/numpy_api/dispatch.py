"""numpy's dispatch into crk: ``__array_ufunc__`` and ``__array_function__`` of crk values.

Every numpy ufunc or array function called with an AdjFloat or a crk.ndarray ends in exactly one
of three ways, decided by the tables below:

* **recorded** (``UFUNCS``, ``UFUNC_HANDLERS``, ``UFUNC_METHODS``, ``FUNCTIONS``): the result is
  a crk value on the tape;
* **plain** (``PLAIN_UFUNCS``, ``PLAIN_FUNCTIONS``): the result is a plain numpy value, because
  it is an integer, a boolean, a shape, a new constant, or piecewise constant with a zero
  derivative almost everywhere (floor, sign, round...);
* **refused**: a TypeError saying "not recorded by crk" (any ufunc or function not listed).

The user's explicit exits from the tape are ``float(x)``, ``np.asarray(x)``, ``x.item()`` and
``x.value``: those return plain values on purpose.
"""
import inspect

import numpy as np

from .. import numpy_rules as R
from ..distributed.align import register_elementwise
from ..overloaded_type import plain_value
from ..recording import apply
from . import elementwise as E
from . import linalg as L
from . import plain as P
from . import reductions as Red
from . import shape as S
from . import statistics as St

# -- ufuncs -----------------------------------------------------------------------------------
UFUNCS = {
    np.add: R.add, np.subtract: R.subtract, np.multiply: R.multiply, np.divide: R.divide,
    np.power: R.power, np.float_power: R.float_power, np.negative: R.negative,
    np.positive: R.positive, np.remainder: R.mod, np.fmod: R.fmod,
    np.exp: R.exp, np.exp2: R.exp2, np.expm1: R.expm1, np.log: R.log, np.log2: R.log2,
    np.log10: R.log10, np.log1p: R.log1p, np.sqrt: R.sqrt, np.cbrt: R.cbrt,
    np.square: R.square, np.reciprocal: R.reciprocal, np.absolute: R.absolute, np.fabs: R.fabs,
    np.sin: R.sin, np.cos: R.cos, np.tan: R.tan, np.arcsin: R.arcsin, np.arccos: R.arccos,
    np.arctan: R.arctan, np.sinh: R.sinh, np.cosh: R.cosh, np.tanh: R.tanh,
    np.arcsinh: R.arcsinh, np.arccosh: R.arccosh, np.arctanh: R.arctanh,
    np.deg2rad: R.deg2rad, np.rad2deg: R.rad2deg, np.arctan2: R.arctan2, np.hypot: R.hypot,
    np.logaddexp: R.logaddexp, np.logaddexp2: R.logaddexp2,
    np.maximum: R.maximum, np.minimum: R.minimum, np.fmax: R.fmax, np.fmin: R.fmin,
}
# degrees/radians are numpy's other names of rad2deg/deg2rad (distinct ufunc objects)
UFUNCS[np.degrees] = R.rad2deg
UFUNCS[np.radians] = R.deg2rad
# Elementwise with broadcasting: on distributed operands their results keep the rows
register_elementwise(UFUNCS.values())

# ufuncs whose arguments or results need sorting out first
UFUNC_HANDLERS = {
    np.matmul: L.matmul, np.vecdot: L.vecdot, np.matvec: L.matvec, np.vecmat: L.vecmat,
    np.copysign: E.copysign, np.ldexp: E.ldexp, np.divmod: E.divmod_, np.modf: E.modf,
    np.frexp: E.frexp, np.conjugate: E.conjugate,
}
# ufunc methods that are reductions or scans crk records (numpy's default axis is 0)
def _ufunc_reduce(reduction):
    def reduce(x, axis=0, keepdims=False):
        return reduction(x, None if np.ndim(plain_value(x)) == 0 else axis, keepdims)
    return reduce


def _ufunc_accumulate(x, axis=0):
    if np.ndim(plain_value(x)) == 0:
        raise TypeError("numpy.add.accumulate: cannot accumulate on a scalar")
    return Red.cumsum(x, axis)


UFUNC_METHODS = {
    (np.add, "reduce"): _ufunc_reduce(Red.sum), (np.multiply, "reduce"): _ufunc_reduce(Red.prod),
    (np.maximum, "reduce"): _ufunc_reduce(Red.max),
    (np.minimum, "reduce"): _ufunc_reduce(Red.min),
    (np.add, "accumulate"): _ufunc_accumulate,
}
# plain results: piecewise constant (zero derivative almost everywhere) or boolean
PLAIN_UFUNCS = {
    np.sign, np.floor, np.ceil, np.rint, np.trunc, np.spacing, np.heaviside, np.floor_divide,
    np.signbit, np.isfinite, np.isinf, np.isnan,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
}
_INTEGER_ONLY = "it is defined for integers only, and crk values are floating point"
REFUSED_UFUNCS = {
    np.bitwise_and: _INTEGER_ONLY, np.bitwise_or: _INTEGER_ONLY, np.bitwise_xor: _INTEGER_ONLY,
    np.bitwise_count: _INTEGER_ONLY, np.invert: _INTEGER_ONLY, np.left_shift: _INTEGER_ONLY,
    np.right_shift: _INTEGER_ONLY, np.gcd: _INTEGER_ONLY, np.lcm: _INTEGER_ONLY,
    np.isnat: "it is defined for datetimes only",
    np.nextafter: "it moves a value by one unit in the last place, which no derivative "
                  "describes",
}
_IGNORED_UFUNC_KWARGS = {"out": None, "dtype": None, "where": True}


def array_ufunc(ufunc, method, inputs, kwargs):
    """Implementation of ``__array_ufunc__`` for crk values."""
    if kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{ufunc.__name__}(..., out=...): crk values are immutable, so in-place "
            f"results cannot be recorded; write y = np.{ufunc.__name__}(...) instead")
    if kwargs:
        kwargs = {k: v for k, v in kwargs.items()
                  if not (k in _IGNORED_UFUNC_KWARGS and v is _IGNORED_UFUNC_KWARGS[k])}
    if method != "__call__":
        handler = UFUNC_METHODS.get((ufunc, method))
        if handler is None:
            raise TypeError(f"numpy.{ufunc.__name__}.{method} is not recorded by crk. Recorded "
                            f"ufunc methods: {_method_names()}. {_WAY_OUT}")
        return _call(handler, f"{ufunc.__name__}.{method}", inputs, kwargs)
    prim = UFUNCS.get(ufunc)
    if prim is not None and not kwargs:
        return apply(prim, inputs)
    if ufunc in PLAIN_UFUNCS:
        return ufunc(*[plain_value(x) for x in inputs], **kwargs)
    handler = UFUNC_HANDLERS.get(ufunc)
    if handler is not None:
        return _call(handler, ufunc.__name__, inputs, kwargs)
    if prim is not None:
        raise TypeError(f"numpy.{ufunc.__name__}: keyword arguments {sorted(kwargs)} are not "
                        f"supported on crk values")
    reason = REFUSED_UFUNCS.get(ufunc, "crk has no derivative rule for it")
    raise TypeError(f"numpy.{ufunc.__name__} is not recorded by crk: {reason}. {_WAY_OUT}")


_WAY_OUT = ("Compute it on np.asarray(x) (not differentiated) or write a crk Block for it "
            "(see crk.Primitive).")


def _method_names():
    return ", ".join(f"{u.__name__}.{m}" for u, m in UFUNC_METHODS)


# -- array functions ---------------------------------------------------------------------------
FUNCTIONS = {
    # reductions and scans
    np.sum: Red.sum, np.mean: Red.mean, np.prod: Red.prod, np.max: Red.max, np.amax: Red.max,
    np.min: Red.min, np.amin: Red.min, np.ptp: Red.ptp, np.cumsum: Red.cumsum,
    np.trapezoid: Red.trapezoid,
    # statistics
    np.average: St.average, np.var: St.var, np.std: St.std, np.median: St.median,
    # products and norms
    np.dot: L.dot, np.inner: L.inner, np.vdot: L.vdot, np.outer: L.outer, np.einsum: L.einsum,
    np.tensordot: L.tensordot, np.trace: L.trace, np.linalg.norm: L.norm,
    # shapes, joins, differences, shifts, selections
    np.reshape: S.reshape, np.ravel: S.ravel, np.squeeze: S.squeeze,
    np.expand_dims: S.expand_dims, np.transpose: S.transpose, np.swapaxes: S.swapaxes,
    np.moveaxis: S.moveaxis, np.concatenate: S.concatenate, np.stack: S.stack,
    np.hstack: S.hstack, np.vstack: S.vstack, np.copy: S.copy, np.broadcast_to: S.broadcast_to,
    np.diff: S.diff, np.roll: S.roll, np.flip: S.flip, np.sort: S.sort,
    np.take_along_axis: S.take_along_axis,
    # elementwise
    np.where: E.where, np.clip: E.clip, np.interp: E.interp, np.polyval: E.polyval,
    np.nan_to_num: E.nan_to_num, np.real: E.real, np.sinc: E.sinc,
}
# plain results: integers, booleans, shapes, new constants, or zero derivative a.e.
PLAIN_FUNCTIONS = {
    np.argmax: P.argmax, np.argmin: P.argmin, np.any: P.any_, np.all: P.all_,
    np.count_nonzero: P.count_nonzero, np.allclose: P.allclose, np.array_equal: P.array_equal,
    np.imag: P.imag,
}
for _fn in (np.shape, np.ndim, np.size, np.result_type, np.isclose, np.zeros_like,
            np.ones_like, np.empty_like, np.full_like, np.round, np.around, np.fix,
            np.iscomplexobj, np.isrealobj):
    PLAIN_FUNCTIONS[_fn] = P.on_values(_fn)
for _fn in (np.argsort, np.nonzero, np.argwhere, np.flatnonzero):
    PLAIN_FUNCTIONS[_fn] = P.local_only(_fn)
# Of these the derivative would be zero almost everywhere: documented as such.
ZERO_DERIVATIVE = {np.round, np.around, np.fix, np.sign, np.floor, np.ceil, np.rint, np.trunc,
                   np.spacing, np.heaviside, np.floor_divide}


def array_function(func, args, kwargs):
    """Implementation of ``__array_function__`` for crk values."""
    handler = FUNCTIONS.get(func)
    if handler is None:
        handler = PLAIN_FUNCTIONS.get(func)
    if handler is None:
        raise TypeError(
            f"numpy.{func.__name__} is not recorded by crk for crk values. Recorded: "
            f"{', '.join(sorted({f.__name__ for f in FUNCTIONS}))} and the ufuncs. "
            f"{_WAY_OUT}")
    return _call(handler, func.__name__, args, kwargs)


_IGNORED_KWARGS = {"out": None, "dtype": None}
_signatures = {}


def _call(handler, name, args, kwargs):
    """``handler(*args, **kwargs)``, with numpy options crk does not support refused by name."""
    if kwargs:
        kwargs = {k: v for k, v in kwargs.items()
                  if not (k in _IGNORED_KWARGS and v is _IGNORED_KWARGS[k])}
    signature = _signatures.get(handler)
    if signature is None:
        try:
            signature = _signatures[handler] = inspect.signature(handler)
        except (TypeError, ValueError):       # a builtin: numpy checks its own arguments
            return handler(*args, **kwargs)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"numpy.{name}: {e}; on crk values crk records "
                        f"{name}{signature}") from None
    return handler(*args, **kwargs)
