"""AdjFloat: a replicated Python float whose arithmetic is recorded (pyadjoint's name)."""
from . import numpy_rules as R
from .block_variable import BlockVariable
from .overloaded_type import (OverloadedType, plain_value, register_overloaded_type,
                              register_result_types)
from .recording import apply, apply2


class AdjFloat(float, OverloadedType):
    """A float on the tape. Replicated: every rank holds the same value.

    Arithmetic with floats, AdjFloats and arrays is recorded, and numpy goes through the same
    dispatch as for crk arrays: every numpy ufunc or function called with an AdjFloat is
    recorded, returns a documented plain value (np.floor, np.sign, ...: zero derivative), or
    raises "not recorded by crk" (see crk.numpy_api.dispatch and docs/numpy.md). Python's
    ``abs(x)`` is recorded; ``min(x, y)`` / ``max(x, y)`` compare values and return one of the
    objects, so the derivative follows the one returned (at a tie, the first argument).

    Leaving the tape, on purpose: ``float(x)``, ``x.value``, ``x.item()``, ``np.asarray(x)``
    return plain values; so do ``int(x)``, ``round(x)``, ``math.floor(x)`` (zero derivative)
    and the ``math`` module's functions, which read the float inside without asking: use numpy
    or crk functions instead of ``math``. numpy functions given a list or tuple of AdjFloats see
    only plain floats (numpy converts the list itself): build ``crk.array([x, y])`` first.
    """

    __slots__ = ("_bv",)

    def __new__(cls, value=0.0, *args, **kwargs):
        self = float.__new__(cls, value)
        self._bv = None
        return self

    def __init__(self, *args, **kwargs):
        pass

    def _ad_create_checkpoint(self):
        return float(self)

    def _ad_from_value(self, value):
        return AdjFloat(value)

    def create_block_variable(self):
        bv = BlockVariable(float(self))
        self._bv = bv
        return bv

    # recorded arithmetic
    def __add__(self, other):
        return apply2(R.add, self, other)

    def __radd__(self, other):
        return apply2(R.add, other, self)

    def __sub__(self, other):
        return apply2(R.subtract, self, other)

    def __rsub__(self, other):
        return apply2(R.subtract, other, self)

    def __mul__(self, other):
        return apply2(R.multiply, self, other)

    def __rmul__(self, other):
        return apply2(R.multiply, other, self)

    def __truediv__(self, other):
        return apply2(R.divide, self, other)

    def __rtruediv__(self, other):
        return apply2(R.divide, other, self)

    def __pow__(self, other):
        return apply2(R.power, self, other)

    def __rpow__(self, other):
        return apply2(R.power, other, self)

    def __mod__(self, other):
        return apply2(R.mod, self, other)

    def __rmod__(self, other):
        return apply2(R.mod, other, self)

    # Floor division is piecewise constant (zero derivative): a plain, unrecorded float.
    def __floordiv__(self, other):
        return float(self) // plain_value(other)

    def __rfloordiv__(self, other):
        return plain_value(other) // float(self)

    def __divmod__(self, other):
        return self // other, self % other

    def __rdivmod__(self, other):
        return other // self, other % self

    def __neg__(self):
        return apply(R.negative, (self,))

    def __pos__(self):
        return self

    def __abs__(self):
        return apply(R.absolute, (self,))

    def __round__(self, ndigits=None):
        """Rounding is piecewise constant: a plain (unrecorded) int or float, derivative zero
        almost everywhere."""
        return round(float(self), ndigits)

    # the value, leaving the tape
    @property
    def value(self):
        """The plain float (not recorded: computing with it leaves the tape)."""
        return float(self)

    def item(self):
        """The plain float (not recorded), as for numpy scalars."""
        return float(self)

    # crk values are real
    @property
    def real(self):
        return self

    @property
    def imag(self):
        return 0.0

    def conjugate(self):
        return self

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_api.dispatch import array_ufunc
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_api.dispatch import array_function
        return array_function(func, args, kwargs)

    def __repr__(self):
        return f"AdjFloat({float(self)!r})"

    def __reduce__(self):
        return (AdjFloat, (float(self),))


register_result_types(scalar=AdjFloat)
register_overloaded_type(float, lambda v, comm=None, distributed=False: AdjFloat(v))
