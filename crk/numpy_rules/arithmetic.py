"""Arithmetic: + - * / ** and the remainders, with broadcasting (the operators' primitives)."""
import operator

import numpy as np

from ..primitive import (Primitive, defhvp, defjvp, defneeds, defvjp, needs_nothing,
                         needs_other_operand)
from .broadcasting import broadcast, unbroadcast, zero_if_none


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
       unbroadcast(-g * zero_if_none(dargs[0]) / (y * y)
                   + 2.0 * g * x * zero_if_none(dargs[1]) / (y * y * y), y))


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
    dx = zero_if_none(dargs[0])
    return unbroadcast(g * (dans * np.log(x) + ans * dx / x), y)


def _def_power(prim):
    defvjp(prim, lambda g, ans, x, y: unbroadcast(g * _power_dx(ans, x, y), x),
           lambda g, ans, x, y: unbroadcast(g * ans * np.log(x), y))
    defjvp(prim, lambda d, ans, x, y: broadcast(d * _power_dx(ans, x, y), ans),
           lambda d, ans, x, y: broadcast(d * ans * np.log(x), ans))
    defhvp(prim, _power_hvp_x, _power_hvp_y)
    return prim


power = _def_power(Primitive("power", _power))


def _float_power(x, y):
    if type(x) is float and type(y) is float:
        return float(np.float_power(x, y))
    return np.float_power(x, y)


# numpy's float_power computes in float64 whatever the input types; on float64 values (all crk
# values) it is x ** y, with the same derivatives, recorded under its own name.
float_power = _def_power(Primitive("float_power", _float_power))


def _floor_quotient(x, y):
    return np.floor(np.divide(x, y))


def _trunc_quotient(x, y):
    return np.trunc(np.divide(x, y))


def _def_remainder(prim, quotient):
    """x - y q(x, y) with q piecewise constant: piecewise linear (no hvp rule), the jumps of q
    aside."""
    defvjp(prim, lambda g, ans, x, y: unbroadcast(g, x),
           lambda g, ans, x, y: unbroadcast(-g * quotient(x, y), y))
    defjvp(prim, lambda d, ans, x, y: broadcast(d, ans),
           lambda d, ans, x, y: broadcast(-d * quotient(x, y), ans))
    defneeds(prim, lambda rec: (frozenset({0, 1}), False) if 1 in rec else (frozenset(), False))
    return prim


# x mod y = x - y floor(x / y) (the sign of y, numpy.remainder and Python's %)
mod = _def_remainder(Primitive("mod", operator.mod), _floor_quotient)
# fmod(x, y) = x - y trunc(x / y) (the sign of x, C's fmod)
fmod = _def_remainder(Primitive("fmod", np.fmod), _trunc_quotient)
