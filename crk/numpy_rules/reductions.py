"""Rank-local reductions and scans: sum, prod, cumsum (the global ones are in over_ranks)."""
import numpy as np

from ..primitive import Primitive, defhvp, defjvp, defneeds, defvjp, needs_nothing
from .broadcasting import as_float, expand_reduced, normalize_axes


def _sum(x, axis=None, keepdims=False):
    return as_float(np.sum(x, axis=axis, keepdims=keepdims))


def _sum_vjp(g, ans, x, axis=None, keepdims=False):
    shape = np.shape(x)
    if axis is not None and not keepdims:
        g = np.expand_dims(g, tuple(a % len(shape) for a in np.atleast_1d(axis)))
    return np.broadcast_to(g, shape).copy() if shape else float(g)


local_sum = Primitive("sum", _sum)
defneeds(local_sum, needs_nothing)
defvjp(local_sum, _sum_vjp)
defjvp(local_sum, lambda d, ans, x, axis=None, keepdims=False: _sum(d, axis, keepdims))


# -- prod: the derivative of entry k is the product of all the others, formed from exclusive
# cumulative products from both ends, so zeros need no division.
def _prod(x, axis=None, keepdims=False):
    return as_float(np.prod(x, axis=axis, keepdims=keepdims))


def _to_last(x, axes):
    """x with the reduced axes moved to the end and flattened into one: (kept..., n)."""
    x = np.asarray(x, dtype=float)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    return moved.reshape(moved.shape[:len(kept)] + (-1,)), moved.shape, kept + list(axes)


def _from_last(flat, moved_shape, perm):
    return np.transpose(flat.reshape(moved_shape), np.argsort(perm))


def _exclusive_products(flat):
    """(left, right): products of the entries before and after each entry along the last axis."""
    if not flat.shape[-1]:
        return flat.copy(), flat.copy()
    ones = np.ones(flat.shape[:-1] + (1,))
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return left, right


def _others_product(x, axes):
    """For each entry, the product of the other entries of its reduced slice (x's shape)."""
    flat, moved_shape, perm = _to_last(x, axes)
    left, right = _exclusive_products(flat)
    return _from_last(left * right, moved_shape, perm)


def _others_product_tangent(x, dx, axes):
    """The derivative of _others_product(x) in the direction dx."""
    flat, moved_shape, perm = _to_last(x, axes)
    dflat = _to_last(dx, axes)[0]
    left, right = _exclusive_products(flat)
    n = flat.shape[-1]
    dleft = np.zeros_like(flat)
    dright = np.zeros_like(flat)
    for k in range(1, n):       # d(left_k) = d(left_{k-1}) x_{k-1} + left_{k-1} dx_{k-1}
        dleft[..., k] = dleft[..., k - 1] * flat[..., k - 1] + left[..., k - 1] * dflat[..., k - 1]
    for k in range(n - 2, -1, -1):
        dright[..., k] = (dright[..., k + 1] * flat[..., k + 1]
                          + right[..., k + 1] * dflat[..., k + 1])
    return _from_last(dleft * right + left * dright, moved_shape, perm)


def _prod_vjp(g, ans, x, axis=None, keepdims=False):
    axes = normalize_axes(axis, np.ndim(x))
    g = expand_reduced(g, np.shape(x), axes, keepdims)
    return as_float(g * _others_product(x, axes)) if np.ndim(x) else float(g)


def _prod_jvp(d, ans, x, axis=None, keepdims=False):
    axes = normalize_axes(axis, np.ndim(x))
    if not np.ndim(x):
        return d
    return as_float(np.sum(d * _others_product(x, axes), axis=axes, keepdims=keepdims))


def _prod_hvp(g, dargs, ans, dans, x, axis=None, keepdims=False):
    if dargs[0] is None or not np.ndim(x):
        return None
    axes = normalize_axes(axis, np.ndim(x))
    g = expand_reduced(g, np.shape(x), axes, keepdims)
    return g * _others_product_tangent(x, dargs[0], axes)


local_prod = Primitive("prod", _prod)
defneeds(local_prod, lambda rec: (frozenset(rec), False))
defvjp(local_prod, _prod_vjp)
defjvp(local_prod, _prod_jvp)
defhvp(local_prod, _prod_hvp)


# -- cumsum along one axis (axis=None: of the flattened array) ---------------------------------
def _cumsum(x, axis=None):
    return np.cumsum(x, axis=axis)


def _reverse_cumsum(g, axis):
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


def _cumsum_vjp(g, ans, x, axis=None):
    if axis is None:
        out = _reverse_cumsum(np.asarray(g), 0).reshape(np.shape(x))
        return as_float(out) if not np.ndim(x) else out
    return _reverse_cumsum(g, axis)


local_cumsum = Primitive("cumsum", _cumsum)
defneeds(local_cumsum, needs_nothing)
defvjp(local_cumsum, _cumsum_vjp)
defjvp(local_cumsum, lambda d, ans, x, axis=None: np.cumsum(d, axis=axis))
