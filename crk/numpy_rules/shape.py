"""Shape operations and indexing: linear maps that move, copy or pick entries."""
import numpy as np

from ..primitive import (Primitive, defjvp, defjvp_argnum, defneeds, defvjp, defvjp_argnum,
                         needs_nothing)
from .broadcasting import as_float, broadcast, unbroadcast

reshape = Primitive("reshape", lambda x, shape: as_float(np.reshape(x, shape)))
defneeds(reshape, needs_nothing)
defvjp(reshape, lambda g, ans, x, shape: as_float(np.reshape(g, np.shape(x))))
defjvp(reshape, lambda d, ans, x, shape: as_float(np.reshape(d, shape)))

transpose = Primitive("transpose", lambda x, axes=None: np.transpose(x, axes))
defneeds(transpose, needs_nothing)
defvjp(transpose, lambda g, ans, x, axes=None:
       np.transpose(g, None if axes is None else np.argsort(axes)))
defjvp(transpose, lambda d, ans, x, axes=None: np.transpose(d, axes))


def _getitem(x, index):
    return as_float(x[index])


def _getitem_vjp(g, ans, x, index):
    out = np.zeros(np.shape(x))
    np.add.at(out, index, g)
    return out


getitem = Primitive("getitem", _getitem)
defneeds(getitem, needs_nothing)
defvjp(getitem, _getitem_vjp)
defjvp(getitem, lambda d, ans, x, index: _getitem(d, index))


def _index_set(x, v, index):
    out = np.array(x, dtype=np.result_type(x, v, np.float64))
    out[index] = v
    return out


def _index_add(x, v, index):
    out = np.array(x, dtype=np.result_type(x, v, np.float64))
    np.add.at(out, index, v)
    return out


def _zero_at(g, index):
    out = np.array(g)
    out[index] = 0.0
    return out


index_set = Primitive("at[].set", _index_set)
defneeds(index_set, needs_nothing)
defvjp(index_set, lambda g, ans, x, v, index: _zero_at(g, index),
       lambda g, ans, x, v, index: unbroadcast(np.asarray(g)[index], v))
defjvp(index_set, lambda d, ans, x, v, index: _zero_at(d, index),
       lambda d, ans, x, v, index: _index_set(np.zeros(np.shape(ans)), d, index))

index_add = Primitive("at[].add", _index_add)
defneeds(index_add, needs_nothing)
defvjp(index_add, lambda g, ans, x, v, index: g,
       lambda g, ans, x, v, index: unbroadcast(np.asarray(g)[index], v))
defjvp(index_add, lambda d, ans, x, v, index: broadcast(d, ans),
       lambda d, ans, x, v, index: _index_add(np.zeros(np.shape(ans)), d, index))


def _split_along(g, argnum, args, axis):
    """The piece of ``g`` belonging to concatenated argument ``argnum``."""
    start = sum(np.shape(a)[axis] for a in args[:argnum])
    stop = start + np.shape(args[argnum])[axis]
    index = [slice(None)] * np.ndim(g)
    index[axis] = slice(start, stop)
    return np.asarray(g)[tuple(index)]


concatenate = Primitive("concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis))
defneeds(concatenate, needs_nothing)
defvjp_argnum(concatenate, lambda argnum, g, ans, *xs, axis=0:
              _split_along(g, argnum, xs, axis))
defjvp_argnum(concatenate, lambda argnum, d, ans, *xs, axis=0: np.concatenate(
    [d if i == argnum else np.zeros(np.shape(x)) for i, x in enumerate(xs)], axis=axis))

stack = Primitive("stack", lambda *xs, axis=0: np.stack(xs, axis=axis))
defneeds(stack, needs_nothing)
defvjp_argnum(stack, lambda argnum, g, ans, *xs, axis=0: as_float(np.take(g, argnum, axis=axis)))
defjvp_argnum(stack, lambda argnum, d, ans, *xs, axis=0: np.stack(
    [d if i == argnum else np.zeros(np.shape(x)) for i, x in enumerate(xs)], axis=axis))


identity = Primitive("copy", lambda x: np.array(x) if np.ndim(x) else x)
defneeds(identity, needs_nothing)
defvjp(identity, lambda g, ans, x: g)
defjvp(identity, lambda d, ans, x: d)


# -- differences and shifts along one axis -----------------------------------------------------
def _diff(x, n=1, axis=-1):
    return np.diff(x, n=n, axis=axis)


def _diff_vjp(g, ans, x, n=1, axis=-1):
    """The adjoint of one forward difference is minus a difference of the zero-padded g."""
    for _ in range(n):
        pad = [(0, 0)] * np.ndim(g)
        pad[axis] = (1, 1)
        g = -np.diff(np.pad(g, pad), axis=axis)
    return g


diff = Primitive("diff", _diff)
defneeds(diff, needs_nothing)
defvjp(diff, _diff_vjp)
defjvp(diff, lambda d, ans, x, n=1, axis=-1: np.diff(d, n=n, axis=axis))

roll = Primitive("roll", lambda x, shift, axis=None: np.roll(x, shift, axis=axis))
defneeds(roll, needs_nothing)
defvjp(roll, lambda g, ans, x, shift, axis=None:
       np.roll(g, tuple(-s for s in np.atleast_1d(shift)) if np.ndim(shift) else -shift,
               axis=axis))
defjvp(roll, lambda d, ans, x, shift, axis=None: np.roll(d, shift, axis=axis))

broadcast_to = Primitive("broadcast_to",
                         lambda x, shape: np.array(np.broadcast_to(x, shape)))
defneeds(broadcast_to, needs_nothing)
defvjp(broadcast_to, lambda g, ans, x, shape: unbroadcast(g, x))
defjvp(broadcast_to, lambda d, ans, x, shape: np.array(np.broadcast_to(d, shape)))
