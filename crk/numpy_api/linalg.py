"""Products and norms: matmul, dot, inner, vdot, outer, einsum, tensordot, vecdot, matvec,
vecmat, trace, norm.

With distributed operands a product has a global meaning in two cases, and crk records exactly
those (refusing the rest on every rank count):

* the distributed operands share their axis 0 and it is contracted: a global sum over ranks,
  replicated result (``dot`` of two distributed vectors, ``einsum('i,i->', x, y)``);
* the distributed operands share their axis 0 and it stays free, first in the output, while no
  replicated operand has it: each rank computes its rows, distributed result
  (``einsum('ij,jk->ik', x_dist, w)``).
"""
import string

import numpy as np

from .. import numpy_rules as R
from ..recording import apply
from .common import is_distributed, ndim_of, shape_of
from .shape import ravel


def _contract(a, b, name):
    """matmul/dot of a and b with the distribution rules; both at most 2-D for dot."""
    da, db = is_distributed(a), is_distributed(b)
    if da and db:
        if ndim_of(a) != 1:
            raise ValueError(
                f"crk.{name}: both arguments are distributed, so the contraction must run over "
                f"their distributed axis 0; that needs a 1-D first argument, got "
                f"{ndim_of(a)}-D. For a rank-local product make one argument replicated.")
        if ndim_of(b) > 2:
            raise ValueError(f"crk.{name}: a distributed second argument must be 1-D or 2-D")
        return apply(R.global_matmul, (a, b), dict(comm=a._ad_comm))
    if db or (da and ndim_of(a) == 1 and ndim_of(b) >= 1):
        raise ValueError(
            f"crk.{name}: this product contracts the distributed axis 0 of one argument with a "
            f"replicated argument; crk cannot split the replicated one to match. Contract two "
            f"distributed arrays (a global dot), or keep the distributed axis free "
            f"(distributed (n, k) @ replicated (k, m)).")
    return apply(R.matmul, (a, b))


def matmul(a, b):
    """a @ b (global when both are distributed and the distributed axis is contracted)."""
    if ndim_of(a) == 0 or ndim_of(b) == 0:
        raise ValueError("crk.matmul: matmul does not accept scalars; use *")
    return _contract(a, b, "matmul")


def dot(a, b):
    """numpy.dot: scalars multiply, up to 2-D a matrix product, beyond that a sum over the last
    axis of a and the second-to-last of b."""
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return apply(R.multiply, (a, b))
    if na <= 2 and nb <= 2:
        return _contract(a, b, "dot")
    la, lb = _letters(na, ""), _letters(nb, _letters(na, ""))
    lb = lb[:-2] + la[-1] + lb[-1] if nb > 1 else la[-1]
    return _einsum("dot", (la, lb), la[:-1] + lb[:-2] + lb[-1:] if nb > 1 else la[:-1], (a, b))


def inner(a, b):
    """Inner product over the last axes (global for distributed vectors)."""
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return apply(R.multiply, (a, b))
    if na == 1 and nb == 1:
        return _contract(a, b, "inner")
    la = _letters(na, "")
    lb = _letters(nb - 1, la) + la[-1]
    return _einsum("inner", (la, lb), la[:-1] + lb[:-1], (a, b))


def vdot(a, b):
    """Inner product of the flattened arrays (global for distributed arrays)."""
    return _contract(ravel(a), ravel(b), "vdot")


def outer(a, b):
    if is_distributed(a) and is_distributed(b):
        raise ValueError("crk.outer: at most one argument may be distributed")
    if is_distributed(b):
        raise ValueError("crk.outer: a distributed second argument would distribute axis 1; "
                         "pass the distributed vector first")
    return apply(R.outer, (a, b))


def trace(x):
    if is_distributed(x):
        raise ValueError("crk.trace: not defined for a distributed array")
    if ndim_of(x) != 2:
        raise ValueError(f"crk.trace: only 2-D arrays are supported, got {ndim_of(x)}-D")
    return apply(R.trace, (x,))


def norm(x, ord=None, axis=None, keepdims=False):
    """2-norm of a vector / Frobenius norm (over ranks for a distributed array)."""
    if ord not in (None, 2, "fro") or axis is not None or keepdims:
        raise ValueError(f"crk.norm: only the 2-/Frobenius norm over all entries is recorded "
                         f"(got ord={ord!r}, axis={axis!r}, keepdims={keepdims!r})")
    if ord == 2 and ndim_of(x) == 2:
        raise ValueError("crk.norm: the spectral norm (ord=2 of a matrix) is not recorded; "
                         "use ord=None for the Frobenius norm")
    comm = x._ad_comm if is_distributed(x) else None
    return apply(R.norm, (x,), dict(comm=comm))


# -- einsum and the products written with it ----------------------------------------------------
def _letters(n, taken):
    """n subscript letters not in ``taken``."""
    return "".join([c for c in string.ascii_letters if c not in taken][:n])


def _sublist_subscripts(args):
    """numpy's interleaved form einsum(op0, sub0, op1, sub1, ..., [subout]) as a string."""
    def text(sub):
        return "".join("..." if s is Ellipsis else string.ascii_letters[s] for s in sub)
    operands = args[0::2]
    subs = args[1::2]
    out = None
    if len(operands) > len(subs):
        operands, out = operands[:-1], operands[-1]
    spec = ",".join(text(s) for s in subs)
    return (spec if out is None else spec + "->" + text(out)), operands


def einsum(*operands, optimize=False):
    """numpy.einsum (string or interleaved subscripts) with the distribution rules above."""
    if not operands:
        raise ValueError("crk.einsum: no subscripts given")
    if isinstance(operands[0], str):
        spec, operands = operands[0], operands[1:]
    else:
        spec, operands = _sublist_subscripts(operands)
    inputs, output = R.parse_einsum(spec, [shape_of(op) for op in operands])
    return _einsum("einsum", inputs, output, operands, spec)


def _einsum(name, inputs, output, operands, spec=None):
    """Record einsum(inputs -> output) after checking its distributed meaning."""
    spec = spec or ",".join(inputs) + "->" + output
    distributed = [k for k, op in enumerate(operands) if is_distributed(op)]
    kwargs = dict(inputs=tuple(inputs), output=output)
    if not distributed:
        return apply(R.einsum, operands, kwargs)

    def refuse(why):
        raise ValueError(
            f"crk.{name}: subscripts {spec!r}: {why}. crk records a product of distributed "
            f"arrays when they share their distributed axis 0 and either contract it (a global "
            f"sum) or keep it first in the output (each rank computes its rows), with no "
            f"replicated operand indexed by it.")
    if any(not inputs[k] for k in distributed):
        refuse("a distributed operand is 0-d")
    axis_letters = {inputs[k][0] for k in distributed}
    if len(axis_letters) > 1:
        refuse("the distributed operands do not share their axis 0")
    letter = axis_letters.pop()
    if any(inputs[k].count(letter) > 1 for k in distributed):
        refuse("the distributed axis appears twice in one operand (a diagonal)")
    if any(letter in inputs[k] for k in range(len(operands)) if k not in distributed):
        refuse("a replicated operand is indexed by the distributed axis")
    comm = operands[distributed[0]]._ad_comm
    if letter not in output:
        return apply(R.global_einsum, operands, dict(kwargs, comm=comm))
    if output[0] != letter:
        refuse("the distributed axis must stay first in the output")
    return apply(R.einsum, operands, kwargs)


def tensordot(a, b, axes=2):
    """Sum over ``axes`` of a and b (numpy's convention); recorded as an einsum."""
    na, nb = ndim_of(a), ndim_of(b)
    if np.ndim(axes) == 0:
        axes_a, axes_b = list(range(na - int(axes), na)), list(range(int(axes)))
    else:
        axes_a, axes_b = ([int(x) for x in np.atleast_1d(ax)] for ax in axes)
    if len(axes_a) != len(axes_b):
        raise ValueError("crk.tensordot: the two axes sequences must have the same length")
    axes_a, axes_b = [x % na for x in axes_a], [x % nb for x in axes_b]
    la = _letters(na, "")
    lb = list(_letters(nb, la))
    for x, y in zip(axes_a, axes_b):
        lb[y] = la[x]
    lb = "".join(lb)
    output = "".join(c for i, c in enumerate(la) if i not in axes_a) + \
        "".join(c for i, c in enumerate(lb) if i not in axes_b)
    return _einsum("tensordot", (la, lb), output, (a, b))


def vecdot(x1, x2, axis=-1):
    """Dot product of vectors along ``axis`` of each argument, broadcasting the other axes."""
    n1, n2 = ndim_of(x1), ndim_of(x2)
    if n1 == 0 or n2 == 0:
        raise ValueError("crk.vecdot: the arguments must have at least one dimension")
    batch = _letters(max(n1, n2) - 1, "z")

    def subscripts(n):
        letters = list(batch[len(batch) - (n - 1):] if n > 1 else "")
        letters.insert(axis % n, "z")
        return "".join(letters)
    return _einsum("vecdot", (subscripts(n1), subscripts(n2)), batch, (x1, x2))


def matvec(x1, x2):
    """Matrix-vector products over the last axes, broadcasting the others."""
    if ndim_of(x1) < 2 or ndim_of(x2) < 1:
        raise ValueError("crk.matvec: expected a matrix (at least 2-D) and a vector")
    return einsum("...ij,...j->...i", x1, x2)


def vecmat(x1, x2):
    """Vector-matrix products over the last axes, broadcasting the others."""
    if ndim_of(x1) < 1 or ndim_of(x2) < 2:
        raise ValueError("crk.vecmat: expected a vector and a matrix (at least 2-D)")
    return einsum("...j,...ji->...i", x1, x2)
