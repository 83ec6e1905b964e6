"""Elementwise functions beyond the plain ufunc table: where, clip, interp, polyval, nan_to_num,
real, and the ufuncs whose arguments or results need sorting out (copysign, ldexp, divmod, modf,
frexp, conjugate).

Elementwise functions act entry by entry, so on a distributed array they act on each rank's
piece, which is their global meaning too. Tables of values (interp's xp and fp, polyval's
coefficients) must be replicated.
"""
import numpy as np

from .. import numpy_rules as R
from ..recording import apply
from .common import is_distributed, is_recorded, plain_value, refuse_distributed


def where(condition, x=None, y=None):
    """Entries of x where ``condition`` (a plain boolean array) holds, else of y."""
    if x is None or y is None:
        raise TypeError("crk.where: the one-argument form (indices of nonzero entries) is not "
                        "recorded; call np.nonzero(np.asarray(x))")
    if is_recorded(condition):
        raise TypeError("crk.where: the condition must be a plain boolean array, not a recorded "
                        "value; compare np.asarray(x) > 0 to build it")
    condition = np.array(condition, dtype=bool)
    condition.flags.writeable = False
    return apply(R.where, (condition, x, y))


def clip(a, a_min=None, a_max=None, *, min=None, max=None):
    """Limit entries to [a_min, a_max] (a and either bound may be recorded). At a bound the
    derivative goes to ``a`` (a value on a bound counts as inside)."""
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    if lo is None and hi is None:
        return apply(R.identity, (a,))
    return apply(R.clip, (a, lo, hi))


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation, recorded in x and fp (xp: plain breakpoints)."""
    if period is not None:
        raise TypeError("crk.interp: argument 'period' is not supported on recorded values")
    if is_recorded(xp):
        raise TypeError("crk.interp: argument 'xp' (the breakpoints) is a recorded value; crk "
                        "differentiates interp in x and fp only. Pass np.asarray(xp).")
    if is_distributed(fp):
        refuse_distributed("interp", "the table of values 'fp' must be replicated")
    for name, bound in (("left", left), ("right", right)):
        if is_recorded(bound):
            raise TypeError(f"crk.interp: argument {name!r} must be a plain number")
    xp = np.array(xp, dtype=float)
    xp.flags.writeable = False
    if xp.ndim != 1 or len(xp) < 2:
        raise ValueError("crk.interp: 'xp' must be 1-D with at least two breakpoints")
    return apply(R.interp, (x, xp, fp), dict(left=left, right=right))


def polyval(p, x):
    """The polynomial with coefficients p (highest power first) at x, by Horner's rule as
    numpy evaluates it; p and x may be recorded (p replicated)."""
    if is_distributed(p):
        refuse_distributed("polyval", "the coefficients 'p' must be replicated")
    y = 0.0
    if is_recorded(p):
        coefficients = [apply(R.getitem, (p,), dict(index=k)) for k in range(len(p))]
    else:
        coefficients = list(p)
    if not coefficients:
        return apply(R.multiply, (x, 0.0))
    for c in coefficients:
        y = y * x + c
    return y


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """x with NaN and infinities replaced by numbers: the replaced entries are constants (zero
    derivative), the others pass through."""
    value = np.asarray(plain_value(x))
    finite = np.array(np.isfinite(value))
    finite.flags.writeable = False
    replacement = np.nan_to_num(value, nan=nan, posinf=posinf, neginf=neginf)
    return apply(R.where, (finite, x, replacement))


def real(x):
    """crk values are real: the value itself."""
    return x


def sinc(x):
    return apply(R.sinc, (x,))


# -- ufuncs needing a hand --------------------------------------------------------------------
def copysign(x, sign):
    """|x| with the sign of ``sign``; the sign argument changes the value only by jumps, so it is
    taken as a constant. With a plain x the result is plain (zero derivative)."""
    if not is_recorded(x):
        return np.copysign(x, plain_value(sign))
    if is_distributed(sign) and not is_distributed(x):
        refuse_distributed("copysign", "a distributed sign needs a distributed first argument")
    return apply(R.copysign, (x, plain_value(sign)))


def ldexp(x, exponent):
    """x * 2**exponent with plain integer exponents."""
    if is_recorded(exponent):
        raise TypeError("crk ldexp: the exponent must be plain integers, not a recorded value")
    return apply(R.ldexp, (x, exponent))


def divmod_(x, y):
    """(floor division: plain, zero derivative; remainder: recorded)."""
    return np.floor_divide(plain_value(x), plain_value(y)), apply(R.mod, (x, y))


def modf(x):
    """(fractional part: recorded, x - trunc(x); integral part: plain, zero derivative)."""
    return apply(R.fmod, (x, 1.0)), np.trunc(plain_value(x))


def frexp(x):
    """(mantissa: recorded, x * 2**-e; exponent e: plain integers)."""
    exponent = np.frexp(plain_value(x))[1]
    return apply(R.ldexp, (x, -exponent)), exponent


def conjugate(x):
    """crk values are real: the value itself."""
    return x
