"""Rule tables of the numpy operations crk records: one Primitive per operation and its rules.

Each operation is a :class:`~crk.primitive.Primitive` plus one registration per derivative kind;
rules work on plain values (Python floats and numpy arrays) and undo broadcasting themselves.
Which numpy function maps to which primitive, and what a distributed array means for it, is
decided in :mod:`crk.numpy_api`.

* ``broadcasting`` — helpers the rules share (unbroadcast, axes, float results);
* ``arithmetic`` — + - * / ** and the remainders (the operators);
* ``elementwise`` — smooth elementwise functions from their derivatives (exp, arcsin, hypot...);
* ``selection`` — maximum/minimum, clip, where and the max/min reductions (piecewise linear);
* ``reductions`` — rank-local sum, prod, cumsum;
* ``shape`` — reshape, transpose, indexing, concatenate/stack, diff, roll, broadcast_to;
* ``linalg`` — matmul, outer, trace, einsum;
* ``interpolation`` — numpy.interp;
* ``over_ranks`` — the primitives that communicate (global reductions, gathers, scans).
"""
from .arithmetic import add, divide, float_power, fmod, mod, multiply, negative, power, subtract
from .broadcasting import broadcast, unbroadcast
from .elementwise import (absolute, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh,
                          cbrt, copysign, cos, cosh, defbinary, defunary, deg2rad, exp, exp2,
                          expm1, fabs, hypot, ldexp, log, log1p, log2, log10, logaddexp,
                          logaddexp2, positive, rad2deg, reciprocal, sin, sinc, sinh, sqrt,
                          square, std_root, tan, tanh)
from .interpolation import interp
from .linalg import einsum, matmul, outer, parse_einsum, trace
from .over_ranks import (cumsum_over_ranks, gather_pieces, global_einsum, global_matmul,
                         global_sum, norm)
from .reductions import local_cumsum, local_prod, local_sum
from .selection import clip, fmax, fmin, local_max, local_min, maximum, minimum, where
from .shape import (broadcast_to, concatenate, diff, getitem, identity, index_add, index_set,
                    reshape, roll, stack, transpose)
