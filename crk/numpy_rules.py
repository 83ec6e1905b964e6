"""Rank-local numpy primitives and their derivative rules (the rule table).

Each operation is a :class:`~crk.primitive.Primitive` plus one registration per derivative kind.
Rules work on plain values (Python floats and numpy arrays) and undo broadcasting themselves.
Global reductions of distributed arrays are in :mod:`crk.reductions`.
"""
import operator

import numpy as np

from .primitive import (Primitive, defhvp, defjvp, defjvp_argnum, defneeds, defvjp,
                        defvjp_argnum, needs_nothing, needs_other_operand)


# -- broadcasting helpers ----------------------------------------------------------------------
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


def _zero(d):
    return 0.0 if d is None else d


# -- arithmetic --------------------------------------------------------------------------------
def _power(x, y):
    if type(x) is float and type(y) is float and x >= 0.0:
        return x ** y
    return np.power(x, y)


add = Primitive("add", operator.add)
defneeds(add, needs_nothing)
defvjp(add, lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(g, y))
defjvp(add, lambda d, ans, x, y: broadcast(d, ans), lambda d, ans, x, y: broadcast(d, ans))

subtract = Primitive("subtract", operator.sub)
defneeds(subtract, needs_nothing)
defvjp(subtract, lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(-g, y))
defjvp(subtract, lambda d, ans, x, y: broadcast(d, ans), lambda d, ans, x, y: broadcast(-d, ans))

negative = Primitive("negative", operator.neg)
defneeds(negative, needs_nothing)
defvjp(negative, lambda g, ans, x: -g)
defjvp(negative, lambda d, ans, x: -d)

multiply = Primitive("multiply", operator.mul)
defneeds(multiply, needs_other_operand)
defvjp(multiply, lambda g, ans, x, y: unbroadcast(g * y, x),
       lambda g, ans, x, y: unbroadcast(g * x, y))
defjvp(multiply, lambda d, ans, x, y: broadcast(d * y, ans),
       lambda d, ans, x, y: broadcast(x * d, ans))
defhvp(multiply, lambda g, dargs, ans, dans, x, y:
       None if dargs[1] is None else unbroadcast(g * dargs[1], x),
       lambda g, dargs, ans, dans, x, y:
       None if dargs[0] is None else unbroadcast(g * dargs[0], y))

divide = Primitive("divide", operator.truediv)
# g/y for x; -g·ans/y and the second-order terms (x, y) for y.
defneeds(divide, lambda rec: (frozenset({0, 1}), True) if 1 in rec else (frozenset({1}), False))
defvjp(divide, lambda g, ans, x, y: unbroadcast(g / y, x),
       lambda g, ans, x, y: unbroadcast(-g * ans / y, y))
defjvp(divide, lambda d, ans, x, y: broadcast(d / y, ans),
       lambda d, ans, x, y: broadcast(-d * ans / y, ans))
defhvp(divide,
       lambda g, dargs, ans, dans, x, y:
       None if dargs[1] is None else unbroadcast(-g * dargs[1] / (y * y), x),
       lambda g, dargs, ans, dans, x, y:
       unbroadcast(-g * _zero(dargs[0]) / (y * y) + 2.0 * g * x * _zero(dargs[1]) / (y * y * y),
                   y))

power = Primitive("power", _power)


def _power_dx(ans, x, y):
    """d(x**y)/dx, with the 0 * inf at y == 0 avoided as autograd does."""
    if type(x) is float and type(y) is float:
        return y * _power(x, y - 1.0) if y != 0.0 else 0.0
    return y * np.power(x, np.where(y, y - 1.0, 1.0))


def _power_d2x(x, y):
    if type(x) is float and type(y) is float:
        return y * (y - 1.0) * _power(x, y - 2.0) if y not in (0.0, 1.0) else 0.0
    safe = np.where((y == 0) | (y == 1), 2.0, y)
    return np.where((y == 0) | (y == 1), 0.0, safe * (safe - 1.0) * np.power(x, safe - 2.0))


def _power_hvp_x(g, dargs, ans, dans, x, y):
    dx, dy = dargs
    term = 0.0
    if dx is not None:
        term = term + _power_d2x(x, y) * dx
    if dy is not None:  # d/dy of y x^(y-1) = x^(y-1) (1 + y log x)
        term = term + _power(x, y - 1.0) * (1.0 + y * np.log(x)) * dy
    return unbroadcast(g * term, x)


def _power_hvp_y(g, dargs, ans, dans, x, y):
    dx = _zero(dargs[0])
    return unbroadcast(g * (dans * np.log(x) + ans * dx / x), y)


defvjp(power, lambda g, ans, x, y: unbroadcast(g * _power_dx(ans, x, y), x),
       lambda g, ans, x, y: unbroadcast(g * ans * np.log(x), y))
defjvp(power, lambda d, ans, x, y: broadcast(d * _power_dx(ans, x, y), ans),
       lambda d, ans, x, y: broadcast(d * ans * np.log(x), ans))
defhvp(power, _power_hvp_x, _power_hvp_y)


# x mod y = x - y floor(x / y): piecewise linear (no hvp rule: zero second order), the floor's
# jumps aside.
mod = Primitive("mod", operator.mod)
defvjp(mod, lambda g, ans, x, y: unbroadcast(g, x),
       lambda g, ans, x, y: unbroadcast(-g * np.floor(np.divide(x, y)), y))
defjvp(mod, lambda d, ans, x, y: broadcast(d, ans),
       lambda d, ans, x, y: broadcast(-d * np.floor(np.divide(x, y)), ans))
defneeds(mod, lambda rec: (frozenset({0, 1}), False) if 1 in rec else (frozenset(), False))


def _balanced_mask(x, y, greater):
    """1 where the first argument wins, 0.5 at ties (a symmetric subgradient)."""
    wins = (x > y) if greater else (x < y)
    return wins + 0.5 * (x == y)


# piecewise linear: no hvp rule (zero second order)
maximum = Primitive("maximum", np.maximum)
defvjp(maximum, lambda g, ans, x, y: unbroadcast(g * _balanced_mask(x, y, True), x),
       lambda g, ans, x, y: unbroadcast(g * _balanced_mask(y, x, True), y))
defjvp(maximum, lambda d, ans, x, y: broadcast(d * _balanced_mask(x, y, True), ans),
       lambda d, ans, x, y: broadcast(d * _balanced_mask(y, x, True), ans))

minimum = Primitive("minimum", np.minimum)
defvjp(minimum, lambda g, ans, x, y: unbroadcast(g * _balanced_mask(x, y, False), x),
       lambda g, ans, x, y: unbroadcast(g * _balanced_mask(y, x, False), y))
defjvp(minimum, lambda d, ans, x, y: broadcast(d * _balanced_mask(x, y, False), ans),
       lambda d, ans, x, y: broadcast(d * _balanced_mask(y, x, False), ans))


# -- elementwise unary functions: f, f'(x, ans), f''(x, ans) -----------------------------------
def defunary(name, fun, first, second=None):
    """Register an elementwise function from its first and second derivatives."""
    prim = Primitive(name, fun)
    defvjp(prim, lambda g, ans, x: g * first(x, ans))
    defjvp(prim, lambda d, ans, x: d * first(x, ans))
    if second is not None:
        defhvp(prim, lambda g, dargs, ans, dans, x:
               None if dargs[0] is None else g * second(x, ans) * dargs[0])
    return prim


def _float_fn(np_fn):
    """numpy's function, returning a Python float for a Python float argument."""
    def fn(x):
        out = np_fn(x)
        return float(out) if type(x) is float else out
    fn.__name__ = np_fn.__name__
    return fn


exp = defunary("exp", _float_fn(np.exp), lambda x, a: a, lambda x, a: a)
expm1 = defunary("expm1", _float_fn(np.expm1), lambda x, a: a + 1.0, lambda x, a: a + 1.0)
log = defunary("log", _float_fn(np.log), lambda x, a: 1.0 / x, lambda x, a: -1.0 / (x * x))
log1p = defunary("log1p", _float_fn(np.log1p), lambda x, a: 1.0 / (1.0 + x),
                 lambda x, a: -1.0 / ((1.0 + x) * (1.0 + x)))
sin = defunary("sin", _float_fn(np.sin), lambda x, a: np.cos(x), lambda x, a: -a)
cos = defunary("cos", _float_fn(np.cos), lambda x, a: -np.sin(x), lambda x, a: -a)
tan = defunary("tan", _float_fn(np.tan), lambda x, a: 1.0 + a * a,
               lambda x, a: 2.0 * a * (1.0 + a * a))
sinh = defunary("sinh", _float_fn(np.sinh), lambda x, a: np.cosh(x), lambda x, a: a)
cosh = defunary("cosh", _float_fn(np.cosh), lambda x, a: np.sinh(x), lambda x, a: a)
tanh = defunary("tanh", _float_fn(np.tanh), lambda x, a: 1.0 - a * a,
                lambda x, a: -2.0 * a * (1.0 - a * a))
arctan = defunary("arctan", _float_fn(np.arctan), lambda x, a: 1.0 / (1.0 + x * x),
                  lambda x, a: -2.0 * x / ((1.0 + x * x) * (1.0 + x * x)))
sqrt = defunary("sqrt", _float_fn(np.sqrt), lambda x, a: 0.5 / a, lambda x, a: -0.25 / (a * x))
square = defunary("square", _float_fn(np.square), lambda x, a: 2.0 * x, lambda x, a: 2.0)
reciprocal = defunary("reciprocal", lambda x: 1.0 / x, lambda x, a: -a * a,
                      lambda x, a: 2.0 * a * a * a)
absolute = defunary("absolute", _float_fn(np.abs), lambda x, a: np.sign(x))


# -- linear algebra ----------------------------------------------------------------------------
def _swap(a):
    return np.swapaxes(a, -1, -2)


def _matmul_vjp_a(g, a, b):
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return g * b
    if np.ndim(b) == 1:
        return unbroadcast(np.asarray(g)[..., :, None] * b, a)
    if np.ndim(a) == 1:
        return unbroadcast((b @ np.asarray(g)[..., None])[..., 0], a)
    return unbroadcast(g @ _swap(b), a)


def _matmul_vjp_b(g, a, b):
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return g * a
    if np.ndim(a) == 1:
        return unbroadcast(a[:, None] * np.asarray(g)[..., None, :], b)
    if np.ndim(b) == 1:
        return unbroadcast((_swap(a) @ np.asarray(g)[..., None])[..., 0], b)
    return unbroadcast(_swap(a) @ g, b)


def _as_float(x):
    return float(x) if np.ndim(x) == 0 else x


def _matmul(a, b):
    return _as_float(np.matmul(a, b))


matmul = Primitive("matmul", _matmul)
defneeds(matmul, needs_other_operand)
defvjp(matmul, lambda g, ans, a, b: _matmul_vjp_a(g, a, b),
       lambda g, ans, a, b: _matmul_vjp_b(g, a, b))
defjvp(matmul, lambda d, ans, a, b: _matmul(d, b), lambda d, ans, a, b: _matmul(a, d))
# matmul is bilinear: the second-order term of one argument is its vjp with the other's tangent.
defhvp(matmul, lambda g, dargs, ans, dans, a, b:
       None if dargs[1] is None else _matmul_vjp_a(g, a, dargs[1]),
       lambda g, dargs, ans, dans, a, b:
       None if dargs[0] is None else _matmul_vjp_b(g, dargs[0], b))

outer = Primitive("outer", np.outer)
defneeds(outer, needs_other_operand)
defvjp(outer, lambda g, ans, a, b: np.reshape(g @ np.ravel(b), np.shape(a)),
       lambda g, ans, a, b: np.reshape(np.ravel(a) @ g, np.shape(b)))
defjvp(outer, lambda d, ans, a, b: np.outer(d, b), lambda d, ans, a, b: np.outer(a, d))
defhvp(outer, lambda g, dargs, ans, dans, a, b:
       None if dargs[1] is None else np.reshape(g @ np.ravel(dargs[1]), np.shape(a)),
       lambda g, dargs, ans, dans, a, b:
       None if dargs[0] is None else np.reshape(np.ravel(dargs[0]) @ g, np.shape(b)))

trace = Primitive("trace", lambda x: float(np.trace(x)))
defneeds(trace, needs_nothing)
defvjp(trace, lambda g, ans, x: g * np.eye(*np.shape(x)))
defjvp(trace, lambda d, ans, x: float(np.trace(d)))


# -- reductions and shape operations (all linear) ----------------------------------------------
def _sum(x, axis=None, keepdims=False):
    return _as_float(np.sum(x, axis=axis, keepdims=keepdims))


def _sum_vjp(g, ans, x, axis=None, keepdims=False):
    shape = np.shape(x)
    if axis is not None and not keepdims:
        g = np.expand_dims(g, tuple(a % len(shape) for a in np.atleast_1d(axis)))
    return np.broadcast_to(g, shape).copy() if shape else float(g)


local_sum = Primitive("sum", _sum)
defneeds(local_sum, needs_nothing)
defvjp(local_sum, _sum_vjp)
defjvp(local_sum, lambda d, ans, x, axis=None, keepdims=False: _sum(d, axis, keepdims))

reshape = Primitive("reshape", lambda x, shape: _as_float(np.reshape(x, shape)))
defneeds(reshape, needs_nothing)
defvjp(reshape, lambda g, ans, x, shape: np.reshape(g, np.shape(x)) if np.ndim(x) else float(g))
defjvp(reshape, lambda d, ans, x, shape: _as_float(np.reshape(d, shape)))

transpose = Primitive("transpose", lambda x, axes=None: np.transpose(x, axes))
defneeds(transpose, needs_nothing)
defvjp(transpose, lambda g, ans, x, axes=None:
       np.transpose(g, None if axes is None else np.argsort(axes)))
defjvp(transpose, lambda d, ans, x, axes=None: np.transpose(d, axes))


def _getitem(x, index):
    return _as_float(x[index])


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
defvjp_argnum(stack, lambda argnum, g, ans, *xs, axis=0: _as_float(np.take(g, argnum, axis=axis)))
defjvp_argnum(stack, lambda argnum, d, ans, *xs, axis=0: np.stack(
    [d if i == argnum else np.zeros(np.shape(x)) for i, x in enumerate(xs)], axis=axis))


def _where(cond, x, y):
    return _as_float(np.where(cond, x, y)) if np.ndim(cond) == 0 else np.where(cond, x, y)


where = Primitive("where", _where)
defneeds(where, needs_nothing)
defvjp(where, None, lambda g, ans, c, x, y: unbroadcast(np.where(c, g, 0.0), x),
       lambda g, ans, c, x, y: unbroadcast(np.where(c, 0.0, g), y), argnums=(0, 1, 2))
defjvp(where, None, lambda d, ans, c, x, y: broadcast(np.where(c, d, 0.0), ans),
       lambda d, ans, c, x, y: broadcast(np.where(c, 0.0, d), ans), argnums=(0, 1, 2))

identity = Primitive("copy", lambda x: np.array(x) if np.ndim(x) else x)
defneeds(identity, needs_nothing)
defvjp(identity, lambda g, ans, x: g)
defjvp(identity, lambda d, ans, x: d)
