"""Selections: elementwise maximum/minimum, clip, where, and the max/min reductions.

All are piecewise linear (no hvp rules): the derivative follows the selected argument. Ties:

* ``maximum``/``minimum``/``fmax``/``fmin`` split a tie evenly (0.5 to each argument, a
  symmetric subgradient);
* ``clip`` gives a value on a bound to the clipped argument (as if it were inside);
* the ``max``/``min`` reductions select the first occurrence (the index ``argmax``/``argmin``
  returns), so the derivative goes to one entry only.
"""
import numpy as np

from ..primitive import Primitive, defjvp, defneeds, defvjp, needs_nothing
from .broadcasting import (as_float, broadcast, expand_reduced, float_fn, normalize_axes,
                           unbroadcast)


def _balanced_mask(x, y, greater):
    """1 where the first argument wins, 0.5 at ties (a symmetric subgradient)."""
    wins = (x > y) if greater else (x < y)
    return wins + 0.5 * (x == y)


def _nan_aware_mask(x, y, greater):
    """fmax/fmin: as _balanced_mask, but a NaN loses to any number."""
    mask = _balanced_mask(x, y, greater)
    return np.where(np.isnan(y), 1.0, np.where(np.isnan(x), 0.0, mask))


def _def_pairwise(name, fun, mask, greater):
    prim = Primitive(name, fun)
    defvjp(prim, lambda g, ans, x, y: unbroadcast(g * mask(x, y, greater), x),
           lambda g, ans, x, y: unbroadcast(g * mask(y, x, greater), y))
    defjvp(prim, lambda d, ans, x, y: broadcast(d * mask(x, y, greater), ans),
           lambda d, ans, x, y: broadcast(d * mask(y, x, greater), ans))
    return prim


maximum = _def_pairwise("maximum", np.maximum, _balanced_mask, True)
minimum = _def_pairwise("minimum", np.minimum, _balanced_mask, False)
fmax = _def_pairwise("fmax", float_fn(np.fmax), _nan_aware_mask, True)
fmin = _def_pairwise("fmin", float_fn(np.fmin), _nan_aware_mask, False)


# -- clip(a, lo, hi) = minimum(maximum(a, lo), hi) ---------------------------------------------
def _clip(a, lo, hi):
    return float_fn(np.clip)(a, lo, hi) if lo is not None or hi is not None else a


def _clip_masks(a, lo, hi):
    """Which argument each output entry comes from: (from a, from lo, from hi)."""
    below = np.zeros(np.shape(a), bool) if lo is None else np.asarray(a) < lo
    after_lo = a if lo is None else np.where(below, lo, a)
    above = np.zeros(np.shape(after_lo), bool) if hi is None else after_lo > hi
    return (~below & ~above), (below & ~above), above


def _clip_vjp(which):
    def rule(g, ans, a, lo, hi):
        mask = _clip_masks(a, lo, hi)[which]
        return unbroadcast(g * mask, (a, lo, hi)[which])
    return rule


def _clip_jvp(which):
    return lambda d, ans, a, lo, hi: broadcast(d * _clip_masks(a, lo, hi)[which], ans)


clip = Primitive("clip", _clip)
defvjp(clip, _clip_vjp(0), _clip_vjp(1), _clip_vjp(2))
defjvp(clip, _clip_jvp(0), _clip_jvp(1), _clip_jvp(2))


# -- where(cond, x, y) --------------------------------------------------------------------------
def _where(cond, x, y):
    return as_float(np.where(cond, x, y)) if np.ndim(cond) == 0 else np.where(cond, x, y)


where = Primitive("where", _where)
defneeds(where, needs_nothing)
defvjp(where, None, lambda g, ans, c, x, y: unbroadcast(np.where(c, g, 0.0), x),
       lambda g, ans, c, x, y: unbroadcast(np.where(c, 0.0, g), y), argnums=(0, 1, 2))
defjvp(where, None, lambda d, ans, c, x, y: broadcast(np.where(c, d, 0.0), ans),
       lambda d, ans, c, x, y: broadcast(np.where(c, 0.0, d), ans), argnums=(0, 1, 2))


# -- max/min reductions -------------------------------------------------------------------------
def _reduce_extreme(x, axis, keepdims, initial, minimum):
    fn = np.min if minimum else np.max
    if initial is None:
        return as_float(fn(x, axis=axis, keepdims=keepdims))
    return as_float(fn(x, axis=axis, keepdims=keepdims, initial=initial))


def first_extreme_mask(x, axis, minimum):
    """1.0 at the first maximum (minimum) over ``axis`` of each slice, 0 elsewhere (float array
    of x's shape; the first in C order when several axes are reduced, as argmax of the
    flattened slice)."""
    x = np.asarray(x)
    axes = normalize_axes(axis, x.ndim)
    if x.ndim == 0:
        return np.ones(())
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    flat = moved.reshape(moved.shape[:len(kept)] + (-1,))
    mask = np.zeros(flat.shape)
    if flat.shape[-1]:
        first = (np.argmin if minimum else np.argmax)(flat, axis=-1)
        np.put_along_axis(mask, first[..., None], 1.0, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(kept + list(axes)))


def _def_extreme(name, minimum):
    def fun(x, axis=None, keepdims=False, initial=None):
        return _reduce_extreme(x, axis, keepdims, initial, minimum)

    def vjp(g, ans, x, axis=None, keepdims=False, initial=None):
        axes = normalize_axes(axis, np.ndim(x))
        g = expand_reduced(g, np.shape(x), axes, keepdims)
        return as_float(g * first_extreme_mask(x, axes, minimum))

    def jvp(d, ans, x, axis=None, keepdims=False, initial=None):
        mask = first_extreme_mask(x, axis, minimum)
        return as_float(np.sum(d * mask, axis=normalize_axes(axis, np.ndim(x)),
                               keepdims=keepdims))

    prim = Primitive(name, fun)
    defneeds(prim, lambda rec: (frozenset(rec), False))
    defvjp(prim, vjp)
    defjvp(prim, jvp)
    return prim


local_max = _def_extreme("max", minimum=False)
local_min = _def_extreme("min", minimum=True)
