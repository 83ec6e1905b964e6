"""AdjFloat: a replicated Python float whose arithmetic is recorded (pyadjoint's name)."""
from . import numpy_rules as R
from .block_variable import BlockVariable
from .overloaded_type import (OverloadedType, plain_value, register_overloaded_type,
                              register_result_types)
from .recording import apply, apply2


class AdjFloat(float, OverloadedType):
    """A float on the tape. Replicated: every rank holds the same value.

    Arithmetic with floats, AdjFloats and arrays is recorded; numpy ufuncs (``np.exp(x)``) too.
    ``math.exp(x)`` and ``float(x)`` leave the tape: use numpy or crk functions instead.
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

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_api import array_ufunc
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __repr__(self):
        return f"AdjFloat({float(self)!r})"

    def __reduce__(self):
        return (AdjFloat, (float(self),))


register_result_types(scalar=AdjFloat)
register_overloaded_type(float, lambda v, comm=None, distributed=False: AdjFloat(v))
