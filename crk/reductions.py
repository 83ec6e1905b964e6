"""Global reductions of distributed arrays: primitives whose forward and tangent sum over ranks.

Their adjoints are rank-local (each rank's piece receives the replicated output adjoint), so the
adjoint sweep communicates nothing here; forward and TLM call :func:`sum_over_ranks`, which is
deterministic and identical on every rank.
"""
import numpy as np

from .numpy_rules import _matmul, _matmul_vjp_a, _matmul_vjp_b, _sum, _sum_vjp
from .parallel.collective import sum_over_ranks
from .primitive import (Primitive, defhvp, defjvp, defneeds, defvjp, needs_nothing,
                        needs_other_operand)


def _reduced(value, comm):
    out = sum_over_ranks(value, comm)
    return float(out) if np.ndim(out) == 0 else out


global_sum = Primitive("sum over ranks",
                       lambda x, comm, axis=None, keepdims=False:
                       _reduced(_sum(x, axis, keepdims), comm),
                       reduces=True)
defvjp(global_sum, lambda g, ans, x, comm, axis=None, keepdims=False:
       _sum_vjp(g, ans, x, axis, keepdims))
defjvp(global_sum, lambda d, ans, x, comm, axis=None, keepdims=False:
       _reduced(_sum(d, axis, keepdims), comm))
defneeds(global_sum, needs_nothing)

global_matmul = Primitive("dot over ranks", lambda a, b, comm: _reduced(_matmul(a, b), comm),
                          reduces=True)
defneeds(global_matmul, needs_other_operand)
defvjp(global_matmul, lambda g, ans, a, b, comm: _matmul_vjp_a(g, a, b),
       lambda g, ans, a, b, comm: _matmul_vjp_b(g, a, b))
defjvp(global_matmul, lambda d, ans, a, b, comm: _reduced(_matmul(d, b), comm),
       lambda d, ans, a, b, comm: _reduced(_matmul(a, d), comm))
defhvp(global_matmul, lambda g, dargs, ans, dans, a, b, comm:
       None if dargs[1] is None else _matmul_vjp_a(g, a, dargs[1]),
       lambda g, dargs, ans, dans, a, b, comm:
       None if dargs[0] is None else _matmul_vjp_b(g, dargs[0], b))


def _norm(x, comm=None):
    return float(np.sqrt(sum_over_ranks(float(np.sum(np.square(x))), comm)))


# The 2-norm over all entries (Frobenius for matrices), over ranks when comm is given. Its
# tangent dans = <x, dx>/|x| (global) is reused by the second-order rule, which needs no message.
norm = Primitive("norm", _norm, reduces=True)
defvjp(norm, lambda g, ans, x, comm=None: g * np.asarray(x) / ans)
defjvp(norm, lambda d, ans, x, comm=None:
       sum_over_ranks(float(np.sum(np.asarray(x) * d)), comm) / ans)
defhvp(norm, lambda g, dargs, ans, dans, x, comm=None:
       None if dargs[0] is None else g * (dargs[0] - np.asarray(x) * (dans / ans)) / ans)
