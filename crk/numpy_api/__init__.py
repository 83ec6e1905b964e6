"""The numpy-like functions crk records, and numpy's dispatch into them.

``np.exp(x)``, ``np.sum(x)``, ``np.einsum(...)``... on crk values (AdjFloat, crk.ndarray) come
here through ``__array_ufunc__`` / ``__array_function__`` (:mod:`.dispatch`, which lists what is
recorded, what returns plain values and what is refused). Each function chooses the rank-local
primitive of :mod:`crk.numpy_rules` or, where it involves the distributed axis 0 of a
distributed array, the global one (a collective), or refuses with an error naming the function
when crk gives it no global meaning. docs/numpy.md has the whole table.

* ``reductions`` — sum, mean, prod, max/min, ptp, cumsum, trapezoid;
* ``statistics`` — average, var, std, median;
* ``linalg`` — matmul, dot, inner, vdot, outer, einsum, tensordot, vecdot, matvec, vecmat,
  trace, norm;
* ``shape`` — reshape and friends, joins, diff, roll, flip, sort, take_along_axis;
* ``elementwise`` — where, clip, interp, polyval, nan_to_num, real and ufunc helpers;
* ``plain`` — functions with plain results (argmax, any, allclose...), global where distributed.
"""
from .dispatch import array_function, array_ufunc
from .elementwise import clip, interp, nan_to_num, polyval, real, sinc, where
from .linalg import (dot, einsum, inner, matmul, matvec, norm, outer, tensordot, trace, vdot,
                     vecdot, vecmat)
from .reductions import cumsum, max, mean, min, prod, ptp, sum, trapezoid
from .shape import (broadcast_to, concatenate, copy, diff, expand_dims, flip, hstack, moveaxis,
                    ravel, reshape, roll, sort, squeeze, stack, swapaxes, take_along_axis,
                    transpose, vstack)
from .statistics import average, median, std, var
