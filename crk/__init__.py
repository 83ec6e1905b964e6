"""crk: an MPI-parallel PDE-constrained optimisation toolkit.

Importing crk initialises nothing: no MPI, PETSc, JAX or TensorFlow is loaded until a function
that needs it runs, and no global setting of another library is changed.
"""
from . import checkpointing
from .adjfloat import AdjFloat
from .backends.jax import overload_jax
from .array import array, ndarray
from .block import Block
from .block_variable import BlockVariable
from .control import Control
from .distributed import gather, redistribute, scatter
from .drivers import compute_gradient, compute_hessian, compute_tlm
from .numpy_api import (concatenate, copy, dot, expand_dims, hstack, inner, matmul, mean, norm,
                        outer, ravel, reshape, squeeze, stack, sum, swapaxes, trace, transpose,
                        vdot, vstack, where)
from .numpy_rules import (absolute, arctan, cos, cosh, exp, expm1, log, log1p, maximum, minimum,
                          power, reciprocal, sin, sinh, sqrt, square, tan, tanh)
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
    "defvjp", "get_working_tape", "overload_jax", "pause_annotation", "set_working_tape", "stop_annotating",
    "taylor_test", "taylor_to_dict",
    # distributed arrays: moving between distributed and replicated
    "gather", "redistribute", "scatter",
    # recorded numpy functions
    "absolute", "arctan", "concatenate", "copy", "cos", "cosh", "dot", "exp", "expand_dims",
    "expm1", "hstack", "inner", "log", "log1p", "matmul", "maximum", "mean", "minimum", "norm",
    "outer", "power", "ravel", "reciprocal", "reshape", "sin", "sinh", "sqrt", "square",
    "squeeze", "stack", "sum", "swapaxes", "tan", "tanh", "trace", "transpose", "vdot",
    "vstack", "where",
]
