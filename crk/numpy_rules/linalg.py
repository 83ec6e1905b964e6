"""Linear algebra: matmul, outer, trace and einsum (multilinear maps of their operands).

Multilinear rules need no second derivatives of their own: the second-order term of one operand
is its vjp with another operand replaced by that operand's tangent.
"""
import string
from collections import Counter

import numpy as np

from ..primitive import (Primitive, defhvp, defhvp_argnum, defjvp, defjvp_argnum, defneeds,
                         defvjp, defvjp_argnum, needs_nothing, needs_other_operand)
from .broadcasting import as_float, unbroadcast


def _swap(a):
    return np.swapaxes(a, -1, -2)


def matmul_vjp_a(g, a, b):
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return g * b
    if np.ndim(b) == 1:
        return unbroadcast(np.asarray(g)[..., :, None] * b, a)
    if np.ndim(a) == 1:
        return unbroadcast((b @ np.asarray(g)[..., None])[..., 0], a)
    return unbroadcast(g @ _swap(b), a)


def matmul_vjp_b(g, a, b):
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return g * a
    if np.ndim(a) == 1:
        return unbroadcast(a[:, None] * np.asarray(g)[..., None, :], b)
    if np.ndim(b) == 1:
        return unbroadcast((_swap(a) @ np.asarray(g)[..., None])[..., 0], b)
    return unbroadcast(_swap(a) @ g, b)


def matmul_value(a, b):
    return as_float(np.matmul(a, b))


matmul = Primitive("matmul", matmul_value)
defneeds(matmul, needs_other_operand)
defvjp(matmul, lambda g, ans, a, b: matmul_vjp_a(g, a, b),
       lambda g, ans, a, b: matmul_vjp_b(g, a, b))
defjvp(matmul, lambda d, ans, a, b: matmul_value(d, b), lambda d, ans, a, b: matmul_value(a, d))
# matmul is bilinear: the second-order term of one argument is its vjp with the other's tangent.
defhvp(matmul, lambda g, dargs, ans, dans, a, b:
       None if dargs[1] is None else matmul_vjp_a(g, a, dargs[1]),
       lambda g, dargs, ans, dans, a, b:
       None if dargs[0] is None else matmul_vjp_b(g, dargs[0], b))

outer = Primitive("outer", np.outer)
defneeds(outer, needs_other_operand)
defvjp(outer, lambda g, ans, a, b: np.reshape(g @ np.ravel(b), np.shape(a)),
       lambda g, ans, a, b: np.reshape(np.ravel(a) @ g, np.shape(b)))
defjvp(outer, lambda d, ans, a, b: np.outer(d, b), lambda d, ans, a, b: np.outer(a, d))
defhvp(outer, lambda g, dargs, ans, dans, a, b:
       None if dargs[1] is None else np.reshape(g @ np.ravel(dargs[1]), np.shape(a)),
       lambda g, dargs, ans, dans, a, b:
       None if dargs[0] is None else np.reshape(np.ravel(dargs[0]) @ g, np.shape(b)))

trace = Primitive("trace", lambda x: float(np.trace(x)))
defneeds(trace, needs_nothing)
defvjp(trace, lambda g, ans, x: g * np.eye(*np.shape(x)))
defjvp(trace, lambda d, ans, x: float(np.trace(d)))


# -- einsum ------------------------------------------------------------------------------------
def parse_einsum(subscripts, shapes):
    """Explicit einsum subscripts: (inputs, output), with every ``...`` replaced by letters.

    ``subscripts`` is numpy's string form (implicit output allowed); ``shapes`` the operands'
    shapes. Raises ValueError for subscripts that do not fit the operands.
    """
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: {len(inputs)} operand subscripts {subscripts!r} for "
                         f"{len(shapes)} operands")
    bad = set(spec.replace("...", "").replace("->", "").replace(",", "")) - \
        set(string.ascii_letters)
    if bad:
        raise ValueError(f"einsum: invalid subscript characters {sorted(bad)} in {subscripts!r}")
    spare = [c for c in string.ascii_letters if c not in spec]
    widths = [len(shape) - (len(s) - 3) for s, shape in zip(inputs, shapes) if "..." in s]
    n_ell = max(widths, default=0)
    ellipsis = "".join(spare[:n_ell])
    explicit = []
    for s, shape in zip(inputs, shapes):
        if "..." in s:
            k = len(shape) - (len(s) - 3)
            s = s.replace("...", ellipsis[n_ell - k:] if k > 0 else "")
        if len(s) != len(shape):
            raise ValueError(f"einsum: subscripts {s!r} do not match an operand of shape "
                             f"{tuple(shape)}")
        explicit.append(s)
    if arrow:
        out = out.replace("...", ellipsis)
    else:
        counts = Counter(lhs.replace("...", "").replace(",", ""))
        out = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1))
    return tuple(explicit), out


def _einsum(inputs, output, operands):
    optimize = len(operands) > 2
    return as_float(np.einsum(",".join(inputs) + "->" + output, *operands, optimize=optimize))


def einsum_value(*operands, inputs, output):
    return _einsum(inputs, output, operands)


def einsum_vjp(k, g, operands, inputs, output):
    """The cotangent of operand ``k`` of einsum(inputs -> output) for output cotangent ``g``."""
    target = inputs[k]
    shape = np.shape(operands[k])
    terms = [(output, g)] + [(s, op) for j, (s, op) in enumerate(zip(inputs, operands))
                             if j != k]
    present = set("".join(s for s, _ in terms))
    unique = "".join(dict.fromkeys(target))
    for c in unique:                    # summed over in operand k alone: broadcast back
        if c not in present:
            terms.append((c, np.ones(shape[target.index(c)])))
    r = _einsum([s for s, _ in terms], unique, [op for _, op in terms])
    if len(unique) < len(target):       # a repeated letter: r sits on that diagonal
        spare = iter(c for c in string.ascii_letters
                     if c not in "".join(inputs) + output)
        spread, eyes, seen = "", [], set()
        for pos, c in enumerate(target):
            if c in seen:
                new = next(spare)
                spread += new
                eyes.append((c + new, np.eye(shape[pos])))
            else:
                seen.add(c)
                spread += c
        r = _einsum([unique] + [s for s, _ in eyes], spread, [r] + [e for _, e in eyes])
    return unbroadcast(r, operands[k]) if np.shape(r) != shape else r


def _replaced(operands, j, value):
    return operands[:j] + (value,) + operands[j + 1:]


def _einsum_hvp(k, g, dargs, operands, inputs, output):
    term = None
    for j, d in enumerate(dargs):
        if j != k and d is not None:
            part = einsum_vjp(k, g, _replaced(operands, j, d), inputs, output)
            term = part if term is None else term + part
    return term


def _einsum_needs(recorded):
    """Each operand's rules read every other operand: a recorded value is needed when another
    operand is recorded too (constants are kept anyway)."""
    return (frozenset(recorded) if len(recorded) > 1 else frozenset()), False


def def_einsum(prim, reduce=lambda value, kw: value):
    """The einsum rules on ``prim`` (``reduce`` sums a value over ranks for the global one)."""
    defneeds(prim, _einsum_needs)
    defvjp_argnum(prim, lambda k, g, ans, *ops, inputs, output, **kw:
                  einsum_vjp(k, g, ops, inputs, output))
    defjvp_argnum(prim, lambda k, d, ans, *ops, inputs, output, **kw: reduce(
        _einsum(inputs, output, _replaced(ops, k, d)), kw))
    defhvp_argnum(prim, lambda k, g, dargs, ans, dans, *ops, inputs, output, **kw:
                  _einsum_hvp(k, g, dargs, ops, inputs, output))
    return prim


einsum = def_einsum(Primitive("einsum", einsum_value))
