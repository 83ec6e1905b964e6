"""Primitives that communicate: reductions and scans of distributed arrays over their ranks.

* ``reduces`` primitives (global sum, dot, norm, einsum, gather of per-rank pieces) take
  distributed inputs to a replicated output: their forward and tangent call a collective, their
  adjoint is rank-local (each rank's piece receives the replicated output adjoint);
* ``cumsum over ranks`` maps a distributed array to a distributed array: its forward, tangent and
  adjoint each call one collective (the prefix offsets), on every rank.

Every collective is a :mod:`crk.parallel.collective` call: deterministic (the same bits on every
rank) and agreeing on failure.
"""
import numpy as np

from ..parallel.collective import allgather_array, exclusive_scan, sum_over_ranks
from ..primitive import Primitive, defhvp, defjvp, defneeds, defvjp, needs_nothing, \
    needs_other_operand
from .linalg import def_einsum, einsum_value, matmul_value, matmul_vjp_a, matmul_vjp_b
from .reductions import _sum, _sum_vjp


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

global_matmul = Primitive("dot over ranks", lambda a, b, comm: _reduced(matmul_value(a, b), comm),
                          reduces=True)
defneeds(global_matmul, needs_other_operand)
defvjp(global_matmul, lambda g, ans, a, b, comm: matmul_vjp_a(g, a, b),
       lambda g, ans, a, b, comm: matmul_vjp_b(g, a, b))
defjvp(global_matmul, lambda d, ans, a, b, comm: _reduced(matmul_value(d, b), comm),
       lambda d, ans, a, b, comm: _reduced(matmul_value(a, d), comm))
defhvp(global_matmul, lambda g, dargs, ans, dans, a, b, comm:
       None if dargs[1] is None else matmul_vjp_a(g, a, dargs[1]),
       lambda g, dargs, ans, dans, a, b, comm:
       None if dargs[0] is None else matmul_vjp_b(g, dargs[0], b))


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

# einsum whose distributed operands share a contracted axis 0: rank-local einsum, summed.
global_einsum = def_einsum(
    Primitive("einsum over ranks",
              lambda *ops, inputs, output, comm: _reduced(einsum_value(
                  *ops, inputs=inputs, output=output), comm),
              reduces=True),
    reduce=lambda value, kw: _reduced(value, kw["comm"]))


# -- per-rank pieces gathered into one replicated array ----------------------------------------
def _gather(piece, comm):
    """(1, *s) on each rank -> (size, *s), rank r's piece in row r."""
    return allgather_array(np.asarray(piece)[0], comm)


def _rank(comm):
    return 0 if comm is None else comm.rank


# The last step of a global max/min/prod: each rank's partial result becomes one row of a
# replicated array, which a rank-local reduction (the same on every rank) finishes.
gather_pieces = Primitive("gather over ranks", _gather, reduces=True)
defneeds(gather_pieces, needs_nothing)
defvjp(gather_pieces, lambda g, ans, piece, comm: np.asarray(g)[_rank(comm)][None].copy())
defjvp(gather_pieces, lambda d, ans, piece, comm: _gather(d, comm))


# -- cumsum along the distributed axis 0 -------------------------------------------------------
def _scan(x, comm, reverse=False):
    """Cumulative sum along axis 0 over all ranks (from the end with ``reverse``)."""
    x = np.array(x, dtype=float)
    total = x.sum(axis=0)
    offset = exclusive_scan(total, comm, reverse=reverse)
    if len(x):
        if reverse:
            x[-1] += offset
            return np.flip(np.cumsum(np.flip(x, 0), axis=0), 0)
        x[0] += offset
    return np.cumsum(x, axis=0)


cumsum_over_ranks = Primitive("cumsum over ranks", _scan)
defneeds(cumsum_over_ranks, needs_nothing)
defvjp(cumsum_over_ranks, lambda g, ans, x, comm: _scan(g, comm, reverse=True))
defjvp(cumsum_over_ranks, lambda d, ans, x, comm: _scan(d, comm))
