"""Piecewise-linear interpolation (numpy.interp), differentiable in the points x and the values fp.

The breakpoints ``xp`` are constants. In x the interpolant is piecewise linear (slope of the
segment holding x, zero outside [xp[0], xp[-1]]; at a breakpoint the segment to its right, as
numpy picks it, the last segment at xp[-1]); in fp it is linear; the mixed second derivative
(slope in fp) is the only second-order term.
"""
import numpy as np

from ..primitive import Primitive, defhvp, defjvp, defneeds, defvjp
from .broadcasting import as_float


def _interp(x, xp, fp, left=None, right=None):
    return as_float(np.interp(x, xp, fp, left=left, right=right))


def _segments(x, xp):
    """(segment index i, weight t of fp[i+1], inside) for each x: value = (1-t) fp[i] + t fp[i+1]
    inside [xp[0], xp[-1]]."""
    x = np.asarray(x, dtype=float)
    xp = np.asarray(xp, dtype=float)
    i = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, len(xp) - 2)
    t = (x - xp[i]) / (xp[i + 1] - xp[i])
    inside = (x >= xp[0]) & (x <= xp[-1])
    return i, t, inside


def _slope(x, xp, fp):
    """d interp / dx: the slope of x's segment inside, 0 outside."""
    i, _, inside = _segments(x, xp)
    xp = np.asarray(xp, dtype=float)
    fp = np.asarray(fp, dtype=float)
    return np.where(inside, (fp[i + 1] - fp[i]) / (xp[i + 1] - xp[i]), 0.0)


def _fp_weights(x, xp, left, right):
    """(index, weight) pairs: interp = sum of weight * fp[index] over the two pairs, per x."""
    i, t, inside = _segments(x, xp)
    x = np.asarray(x, dtype=float)
    n = len(xp)
    below, above = x < xp[0], x > xp[-1]
    w0 = np.where(inside, 1.0 - t, np.where(below & (left is None), 1.0, 0.0))
    w1 = np.where(inside, t, np.where(above & (right is None), 1.0, 0.0))
    i0 = np.where(below, 0, i)
    i1 = np.where(above, n - 1, i + 1)
    return (i0, w0), (i1, w1)


def _fp_vjp(g, x, xp, fp, left, right):
    out = np.zeros(np.shape(fp))
    g = np.broadcast_to(g, np.shape(x))
    for index, weight in _fp_weights(x, xp, left, right):
        np.add.at(out, index, g * weight)
    return out


def _fp_jvp(d, x, xp, left, right):
    return sum(np.asarray(d)[index] * weight for index, weight in _fp_weights(x, xp, left, right))


def _slope_tangent(x, xp, dfp):
    """The change of the slope at x when fp changes by dfp."""
    return _slope(x, xp, dfp)


def _slope_vjp(g, x, xp, fp):
    """The adjoint of fp -> slope(x) for cotangent g."""
    i, _, inside = _segments(x, xp)
    xp = np.asarray(xp, dtype=float)
    per = np.where(inside, np.broadcast_to(g, np.shape(x)) / (xp[i + 1] - xp[i]), 0.0)
    out = np.zeros(np.shape(fp))
    np.add.at(out, i + 1, per)
    np.add.at(out, i, -per)
    return out


interp = Primitive("interp", _interp)
# x's rules read x and fp, fp's rules read x
defneeds(interp, lambda rec: (frozenset({0, 2} if 0 in rec else {0}), False))
defvjp(interp, lambda g, ans, x, xp, fp, left=None, right=None: as_float(g * _slope(x, xp, fp)),
       None, lambda g, ans, x, xp, fp, left=None, right=None: _fp_vjp(g, x, xp, fp, left, right))
defjvp(interp, lambda d, ans, x, xp, fp, left=None, right=None: as_float(d * _slope(x, xp, fp)),
       None, lambda d, ans, x, xp, fp, left=None, right=None:
       as_float(_fp_jvp(d, x, xp, left, right)))
defhvp(interp,
       lambda g, dargs, ans, dans, x, xp, fp, left=None, right=None:
       None if dargs[2] is None else as_float(g * _slope_tangent(x, xp, dargs[2])),
       None,
       lambda g, dargs, ans, dans, x, xp, fp, left=None, right=None:
       None if dargs[0] is None else _slope_vjp(g * dargs[0], x, xp, fp))
