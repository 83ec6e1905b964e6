"""Helpers the rules share: undoing numpy broadcasting, and keeping Python floats as floats.

Rules work on plain values: Python floats (the values of AdjFloats) and numpy arrays. A rule
that receives floats returns floats, so scalar tapes never hold 0-d arrays.
"""
import numpy as np


def unbroadcast(g, x):
    """Sum ``g`` down to the shape of ``x`` (the adjoint of numpy broadcasting)."""
    if type(g) is float and type(x) is float:
        return g
    x_shape = np.shape(x)
    if np.shape(g) == x_shape:
        return g
    g = np.asarray(g)
    while g.ndim > len(x_shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(x_shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return float(g) if type(x) is float else g


def broadcast(d, ans):
    """Broadcast tangent ``d`` to the shape of the output ``ans``."""
    if type(d) is float and type(ans) is float:
        return d
    shape = np.shape(ans)
    if np.shape(d) == shape:
        return d
    out = np.broadcast_to(d, shape)
    return float(out) if type(ans) is float else out


def zero_if_none(d):
    return 0.0 if d is None else d


def as_float(x):
    """A 0-d result as a Python float; arrays unchanged."""
    return float(x) if np.ndim(x) == 0 else x


def float_fn(np_fn):
    """numpy's function, returning a Python float when every argument is a Python float."""
    def fn(*args):
        out = np_fn(*args)
        return float(out) if all(type(a) is float for a in args) else out
    fn.__name__ = getattr(np_fn, "__name__", "fn")
    return fn


def normalize_axes(axis, ndim):
    """``axis`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(sorted({a % ndim for a in np.atleast_1d(axis)})) if ndim else ()


def expand_reduced(g, shape, axes, keepdims):
    """The cotangent ``g`` of a reduction over ``axes`` broadcast back to the input ``shape``."""
    if axes and not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)
