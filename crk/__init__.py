"""crk: an MPI-parallel PDE-constrained optimisation toolkit.

Importing crk initialises nothing: no MPI, PETSc, JAX or TensorFlow is loaded until a function
that needs it runs, and no global setting of another library is changed.
"""
from . import checkpointing, optimize
from .adjfloat import AdjFloat
from .backends.jax import overload_jax
from .array import array, ndarray
from .block import Block
from .block_variable import BlockVariable
from .control import Control
from .distributed import gather, redistribute, scatter
from .drivers import compute_gradient, compute_hessian, compute_tlm
from .numpy_api import (average, broadcast_to, clip, concatenate, copy, cumsum, diff, dot,
                        einsum, expand_dims, flip, hstack, inner, interp, matmul, matvec, max,
                        mean, median, min, moveaxis, nan_to_num, norm, outer, polyval, prod, ptp,
                        ravel, real, reshape, roll, sinc, sort, squeeze, stack, std, sum,
                        swapaxes, take_along_axis, tensordot, trace, transpose, trapezoid, var,
                        vdot, vecdot, vecmat, vstack, where)
from .numpy_rules import (absolute, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh,
                          cbrt, cos, cosh, deg2rad, exp, exp2, expm1, fabs, float_power, fmax,
                          fmin, fmod, hypot, log, log1p, log2, log10, logaddexp, logaddexp2,
                          maximum, minimum, power, rad2deg, reciprocal, sin, sinh, sqrt, square,
                          tan, tanh)
from .optimize import minimize
from .overloaded_type import OverloadedType, create_overloaded_object
from .primitive import Primitive, defhvp, defjvp, defvjp
from .reduced import ReducedFunction, ReducedFunctional
from .tape import (Tape, annotating, continue_annotation, get_working_tape, pause_annotation,
                   set_working_tape, stop_annotating)
from .verification import check_duality, convergence_rates, taylor_test, taylor_to_dict

__version__ = "0.1.0"

__all__ = [
    "checkpointing", "AdjFloat", "Block", "BlockVariable", "Control", "OverloadedType", "Primitive",
    "ReducedFunction", "ReducedFunctional", "Tape", "annotating", "array", "ndarray",
    "check_duality", "compute_gradient", "compute_hessian", "compute_tlm",
    "continue_annotation", "convergence_rates", "create_overloaded_object", "defhvp", "defjvp",
    "defvjp", "get_working_tape", "minimize", "optimize", "overload_jax", "pause_annotation",
    "set_working_tape", "stop_annotating",
    "taylor_test", "taylor_to_dict",
    # distributed arrays: moving between distributed and replicated
    "gather", "redistribute", "scatter",
    # recorded numpy functions
    "absolute", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
    "average", "broadcast_to", "cbrt", "clip", "concatenate", "copy", "cos", "cosh", "cumsum",
    "deg2rad", "diff", "dot", "einsum", "exp", "exp2", "expand_dims", "expm1", "fabs", "flip",
    "float_power", "fmax", "fmin", "fmod", "hstack", "hypot", "inner", "interp", "log", "log10",
    "log1p", "log2", "logaddexp", "logaddexp2", "matmul", "matvec", "max", "maximum", "mean",
    "median", "min", "minimum", "moveaxis", "nan_to_num", "norm", "outer", "polyval", "power",
    "prod", "ptp", "rad2deg", "ravel", "real", "reciprocal", "reshape", "roll", "sin", "sinc",
    "sinh", "sort", "sqrt", "square", "squeeze", "stack", "std", "sum", "swapaxes",
    "take_along_axis", "tan", "tanh", "tensordot", "trace", "transpose", "trapezoid", "var",
    "vdot", "vecdot", "vecmat", "vstack", "where",
]
