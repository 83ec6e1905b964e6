"""Differentiable elementwise functions, each defined by its first and second derivatives.

``defunary(name, f, f', f'')`` and ``defbinary(name, f, (f_x, f_y), (f_xx, f_xy, f_yy))`` make
the primitive and its four rules; derivatives are functions of the arguments and the output
``ans`` (None: zero). Binary functions broadcast.
"""
import numpy as np

from ..primitive import Primitive, defhvp, defjvp, defneeds, defvjp, needs_nothing
from .broadcasting import broadcast, float_fn, unbroadcast

_LN2, _LN10 = np.log(2.0), np.log(10.0)


def defunary(name, fun, first, second=None):
    """An elementwise function from ``first(x, ans)`` and ``second(x, ans)`` (None: linear or
    piecewise linear, no second-order term)."""
    prim = Primitive(name, fun)
    defvjp(prim, lambda g, ans, x: g * first(x, ans))
    defjvp(prim, lambda d, ans, x: d * first(x, ans))
    if second is not None:
        defhvp(prim, lambda g, dargs, ans, dans, x:
               None if dargs[0] is None else g * second(x, ans) * dargs[0])
    return prim


def _linear(name, fun, factor):
    """x -> factor * x (a unit conversion): rules read no values."""
    prim = Primitive(name, fun)
    defneeds(prim, needs_nothing)
    defvjp(prim, lambda g, ans, x: g * factor)
    defjvp(prim, lambda d, ans, x: d * factor)
    return prim


exp = defunary("exp", float_fn(np.exp), lambda x, a: a, lambda x, a: a)
exp2 = defunary("exp2", float_fn(np.exp2), lambda x, a: _LN2 * a, lambda x, a: _LN2 * _LN2 * a)
expm1 = defunary("expm1", float_fn(np.expm1), lambda x, a: a + 1.0, lambda x, a: a + 1.0)
log = defunary("log", float_fn(np.log), lambda x, a: 1.0 / x, lambda x, a: -1.0 / (x * x))
log2 = defunary("log2", float_fn(np.log2), lambda x, a: 1.0 / (_LN2 * x),
                lambda x, a: -1.0 / (_LN2 * x * x))
log10 = defunary("log10", float_fn(np.log10), lambda x, a: 1.0 / (_LN10 * x),
                 lambda x, a: -1.0 / (_LN10 * x * x))
log1p = defunary("log1p", float_fn(np.log1p), lambda x, a: 1.0 / (1.0 + x),
                 lambda x, a: -1.0 / ((1.0 + x) * (1.0 + x)))
sin = defunary("sin", float_fn(np.sin), lambda x, a: np.cos(x), lambda x, a: -a)
cos = defunary("cos", float_fn(np.cos), lambda x, a: -np.sin(x), lambda x, a: -a)
tan = defunary("tan", float_fn(np.tan), lambda x, a: 1.0 + a * a,
               lambda x, a: 2.0 * a * (1.0 + a * a))
arcsin = defunary("arcsin", float_fn(np.arcsin), lambda x, a: 1.0 / np.sqrt(1.0 - x * x),
                  lambda x, a: x / (1.0 - x * x) ** 1.5)
arccos = defunary("arccos", float_fn(np.arccos), lambda x, a: -1.0 / np.sqrt(1.0 - x * x),
                  lambda x, a: -x / (1.0 - x * x) ** 1.5)
arctan = defunary("arctan", float_fn(np.arctan), lambda x, a: 1.0 / (1.0 + x * x),
                  lambda x, a: -2.0 * x / ((1.0 + x * x) * (1.0 + x * x)))
sinh = defunary("sinh", float_fn(np.sinh), lambda x, a: np.cosh(x), lambda x, a: a)
cosh = defunary("cosh", float_fn(np.cosh), lambda x, a: np.sinh(x), lambda x, a: a)
tanh = defunary("tanh", float_fn(np.tanh), lambda x, a: 1.0 - a * a,
                lambda x, a: -2.0 * a * (1.0 - a * a))
arcsinh = defunary("arcsinh", float_fn(np.arcsinh), lambda x, a: 1.0 / np.sqrt(x * x + 1.0),
                   lambda x, a: -x / (x * x + 1.0) ** 1.5)
arccosh = defunary("arccosh", float_fn(np.arccosh), lambda x, a: 1.0 / np.sqrt(x * x - 1.0),
                   lambda x, a: -x / (x * x - 1.0) ** 1.5)
arctanh = defunary("arctanh", float_fn(np.arctanh), lambda x, a: 1.0 / (1.0 - x * x),
                   lambda x, a: 2.0 * x / ((1.0 - x * x) * (1.0 - x * x)))
sqrt = defunary("sqrt", float_fn(np.sqrt), lambda x, a: 0.5 / a, lambda x, a: -0.25 / (a * x))
cbrt = defunary("cbrt", float_fn(np.cbrt), lambda x, a: 1.0 / (3.0 * a * a),
                lambda x, a: -2.0 / (9.0 * a ** 5))
square = defunary("square", float_fn(np.square), lambda x, a: 2.0 * x, lambda x, a: 2.0)
reciprocal = defunary("reciprocal", lambda x: 1.0 / x, lambda x, a: -a * a,
                      lambda x, a: 2.0 * a * a * a)
# |x| is piecewise linear; at 0 its derivative is taken as sign(0) = 0.
absolute = defunary("absolute", float_fn(np.abs), lambda x, a: np.sign(x))
fabs = defunary("fabs", float_fn(np.fabs), lambda x, a: np.sign(x))


def _sinc_d1(x, a):
    """d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc x) / x, 0 at x = 0."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x == 0.0, 1.0, x)
    out = np.where(x == 0.0, 0.0, (np.cos(np.pi * safe) - a) / safe)
    return float(out) if out.ndim == 0 else out


def _sinc_d2(x, a):
    """-pi^2 sinc x - 2 sinc'(x) / x, -pi^2 / 3 at x = 0."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x == 0.0, 1.0, x)
    out = np.where(x == 0.0, -np.pi ** 2 / 3.0,
                   -np.pi ** 2 * a - 2.0 * _sinc_d1(safe, a) / safe)
    return float(out) if out.ndim == 0 else out


sinc = defunary("sinc", float_fn(np.sinc), _sinc_d1, _sinc_d2)



def _root_slope(x, a):
    """d sqrt(x) / dx, taken as 0 where x = 0."""
    a = np.asarray(a, dtype=float)
    out = np.where(a > 0.0, 0.5 / np.where(a > 0.0, a, 1.0), 0.0)
    return float(out) if out.ndim == 0 else out


def _root_curvature(x, a):
    a = np.asarray(a, dtype=float)
    safe = np.where(a > 0.0, a, 1.0)
    out = np.where(a > 0.0, -0.25 / (safe * safe * safe), 0.0)
    return float(out) if out.ndim == 0 else out


# The square root of a variance: at a zero variance (equal samples) the standard deviation has a
# kink, like |x| at 0, and its derivative is taken as 0 there (a subgradient) instead of inf.
std_root = defunary("sqrt (standard deviation)", float_fn(np.sqrt), _root_slope,
                    _root_curvature)

positive = _linear("positive", float_fn(np.positive), 1.0)
deg2rad = _linear("deg2rad", float_fn(np.deg2rad), np.pi / 180.0)
rad2deg = _linear("rad2deg", float_fn(np.rad2deg), 180.0 / np.pi)


# -- binary functions --------------------------------------------------------------------------
def defbinary(name, fun, first, second=None):
    """A broadcasting function of two arguments from its partial derivatives.

    ``first = (f_x, f_y)``, ``second = (f_xx, f_xy, f_yy)``, each ``(x, y, ans) -> value``
    (None: zero).
    """
    fx, fy = first
    prim = Primitive(name, fun)
    defvjp(prim, lambda g, ans, x, y: unbroadcast(g * fx(x, y, ans), x),
           lambda g, ans, x, y: unbroadcast(g * fy(x, y, ans), y))
    defjvp(prim, lambda d, ans, x, y: broadcast(d * fx(x, y, ans), ans),
           lambda d, ans, x, y: broadcast(d * fy(x, y, ans), ans))
    if second is not None:
        fxx, fxy, fyy = second

        def hvp(own, cross, target):
            def rule(g, dargs, ans, dans, x, y):
                dx, dy = dargs
                term = 0.0
                if dx is not None:
                    term = term + (own if target == 0 else cross)(x, y, ans) * dx
                if dy is not None:
                    term = term + (cross if target == 0 else own)(x, y, ans) * dy
                return unbroadcast(g * term, (x, y)[target])
            return rule
        defhvp(prim, hvp(fxx, fxy, 0), hvp(fyy, fxy, 1))
    return prim


def _r2(x, y):
    return x * x + y * y


# arctan2(y, x): the angle of the point (x, y); here its arguments are called (a, b) = (y, x).
arctan2 = defbinary(
    "arctan2", float_fn(np.arctan2),
    (lambda a, b, t: b / _r2(a, b), lambda a, b, t: -a / _r2(a, b)),
    (lambda a, b, t: -2.0 * a * b / _r2(a, b) ** 2,
     lambda a, b, t: (a * a - b * b) / _r2(a, b) ** 2,
     lambda a, b, t: 2.0 * a * b / _r2(a, b) ** 2))
hypot = defbinary(
    "hypot", float_fn(np.hypot),
    (lambda x, y, r: x / r, lambda x, y, r: y / r),
    (lambda x, y, r: y * y / r ** 3, lambda x, y, r: -x * y / r ** 3,
     lambda x, y, r: x * x / r ** 3))


def _softmax_pair(x, y, ans, base_log):
    """The weights of x and y in log(e^x + e^y) (base e, or base 2 with base_log = ln 2)."""
    return np.exp(base_log * (x - ans)), np.exp(base_log * (y - ans))


def _logaddexp(base_log):
    def w(x, y, a):
        return _softmax_pair(x, y, a, base_log)

    def cross(x, y, a):
        wx, wy = w(x, y, a)
        return base_log * wx * wy
    return ((lambda x, y, a: w(x, y, a)[0], lambda x, y, a: w(x, y, a)[1]),
            (cross, lambda x, y, a: -cross(x, y, a), cross))


logaddexp = defbinary("logaddexp", float_fn(np.logaddexp), *_logaddexp(1.0))
logaddexp2 = defbinary("logaddexp2", float_fn(np.logaddexp2), *_logaddexp(_LN2))

# copysign(x, s) = |x| sign(s): piecewise linear in x; the sign argument changes the value only
# by jumps, so it is never recorded (crk.numpy_api passes its plain value).
copysign = Primitive("copysign", float_fn(np.copysign))
defvjp(copysign, lambda g, ans, x, s: unbroadcast(g * np.copysign(1.0, x) * np.copysign(1.0, s),
                                                  x))
defjvp(copysign, lambda d, ans, x, s:
       broadcast(d * np.copysign(1.0, x) * np.copysign(1.0, s), ans))

# ldexp(x, e) = x 2**e with integer exponents e (never recorded)
ldexp = Primitive("ldexp", float_fn(np.ldexp))
defneeds(ldexp, needs_nothing)
defvjp(ldexp, lambda g, ans, x, e: unbroadcast(np.ldexp(g, e), x))
defjvp(ldexp, lambda d, ans, x, e: broadcast(np.ldexp(d, e), ans))
