"""The numpy calls the tests differentiate: one Case per call (see taylor_cases), for every ufunc
crk records and every array function it claims, on AdjFloats (shapes ``()``) and on arrays.

Distributed runs split axis 0 of every control not in ``replicated_args``; cases whose meaning
on a distributed array is not the serial one set ``distributed=False``.
"""
import numpy as np

from crk.numpy_api import dispatch
import crk
from taylor_cases import Case, spread

POSITIVE = (0.5, 1.5)


def _separated(rng, shapes):
    """Values of the first control, the others at a distance in [0.2, 0.5] (no ties)."""
    a = rng.uniform(-1.0, 1.0, shapes[0]) if shapes[0] else float(rng.uniform(-1.0, 1.0))
    return [a] + [a + np.sign(rng.uniform(-1, 1, s)) * rng.uniform(0.2, 0.5, s)
                  for s in shapes[1:]]


def _signed(rng, shape, lo=0.3, hi=1.0):
    """Values away from zero, of either sign."""
    value = np.sign(rng.uniform(-1, 1, shape)) * rng.uniform(lo, hi, shape)
    return float(value) if not shape else value


def _remainder_data(rng, shapes):
    """x / y in (2.1, 2.5): no jump of the quotient nearby."""
    x, y = rng.uniform(2.2, 2.4, shapes[0]), rng.uniform(0.95, 1.05, shapes[1])
    return [float(x) if not shapes[0] else x, float(y) if not shapes[1] else y]


# -- ufuncs: domains and data -------------------------------------------------------------------
UFUNC_DOMAINS = {
    "log": POSITIVE, "log2": POSITIVE, "log10": POSITIVE, "log1p": POSITIVE, "sqrt": POSITIVE,
    "cbrt": POSITIVE, "reciprocal": POSITIVE, "power": POSITIVE, "float_power": POSITIVE,
    "divide": ((-1.0, 1.0), POSITIVE), "arcsin": (-0.8, 0.8), "arccos": (-0.8, 0.8),
    "arctanh": (-0.8, 0.8), "arccosh": (1.2, 2.0),
}
UFUNC_DATA = {
    "remainder": _remainder_data, "fmod": _remainder_data,
    "maximum": _separated, "minimum": _separated, "fmax": _separated, "fmin": _separated,
    "absolute": lambda rng, shapes: [_signed(rng, shapes[0])],
    "fabs": lambda rng, shapes: [_signed(rng, shapes[0])],
}


# unit conversions scaled back to order one, so that sin(F) is neither linear nor wild
UFUNC_SCALES = {"rad2deg": 0.02, "degrees": 0.02, "deg2rad": 50.0, "radians": 50.0}


def _ufunc_call(ufunc):
    scale = UFUNC_SCALES.get(ufunc.__name__)
    if scale is not None:
        return lambda *xs: ufunc(*xs) * scale
    return lambda *xs: ufunc(*xs)


def ufunc_cases(ufunc):
    """Scalar (AdjFloat), array and broadcast cases of a ufunc in crk's recorded table."""
    name = ufunc.__name__
    domain = UFUNC_DOMAINS.get(name, (-1.0, 1.0))
    special = UFUNC_DATA.get(name)
    shapes = {"scalar": ((),) * ufunc.nin, "array": ((6, 2),) * ufunc.nin}
    if ufunc.nin == 2:
        shapes["broadcast"] = ((6, 2), ())
    cases = []
    for kind, s in shapes.items():
        data = None if special is None else (lambda rng, s=s: special(rng, s))
        cases.append(Case(f"{name}-{kind}", _ufunc_call(ufunc), s, domain=domain, data=data,
                          distributed=kind != "scalar", covers=(ufunc,)))
    return cases


def _sorted_x(rng):
    return [spread(rng, (7,), 0.1, 1.9)]


XP, FP = np.array([0.0, 0.5, 1.2, 2.0]), np.array([1.0, -0.5, 0.3, 0.8])
P = np.array([0.5, -1.0, 2.0, 0.3])


def _interp_x(rng, shape):
    """Points inside segments (away from breakpoints) and outside [0, 2]."""
    inside = rng.choice([0.2, 0.3, 0.7, 0.9, 1.5, 1.8, -0.4, 2.3], shape)
    return inside + rng.uniform(-0.05, 0.05, shape)


def _clip_x(rng, shape):
    """Values away from the bounds -0.5 and 0.5."""
    value = rng.choice([-0.8, -0.2, 0.1, 0.3, 0.8], shape) + rng.uniform(-0.05, 0.05, shape)
    return float(value) if not shape else value


def _with_zero(rng):
    x = rng.uniform(-1.0, 1.0, (6, 2))
    x[2, 1] = 0.0
    return [x]


def _case(name, fn, shapes, covers, **options):
    return Case(name, fn, shapes, covers=covers if isinstance(covers, tuple) else (covers,),
                **options)


# -- operators, methods and crk's own functions ------------------------------------------------
OPERATOR_CASES = [
    Case("add", lambda x, y: x + y, ((7, 3), (7, 3))),
    Case("add-broadcast-param", lambda x, p: x + p, ((7, 3), (3,)), replicated_args=(1,)),
    Case("subtract", lambda x, y: x - 2.0 * y, ((7, 3), (7, 3))),
    Case("rsub-scalar", lambda x: 1.5 - x, ((6,),)),
    Case("multiply", lambda x, y: x * y, ((7, 3), (7, 3))),
    Case("multiply-param", lambda x, p: x * p, ((7, 3), (3,)), replicated_args=(1,)),
    Case("multiply-adjfloat", lambda x, a: a * x * a, ((6,), ()), replicated_args=(1,)),
    Case("divide", lambda x, y: x / y, ((7, 3), (7, 3)), domain=POSITIVE),
    Case("rdivide-param", lambda x, p: p / x, ((7, 3), (3,)), domain=POSITIVE,
         replicated_args=(1,)),
    Case("power-const", lambda x: x ** 3.0, ((6, 2),), domain=POSITIVE),
    Case("power-both", lambda x, y: x ** y, ((6, 2), (6, 2)), domain=POSITIVE),
    Case("power-param-exponent", lambda x, p: x ** p, ((6, 2), ()), domain=POSITIVE,
         replicated_args=(1,)),
    Case("rpow", lambda x: 2.0 ** x, ((6,),)),
    Case("negative", lambda x: -x, ((6,),)),
    Case("mod", lambda x, y: (x % y) * (x % 0.7), ((9,), (9,)),
         data=lambda rng: _remainder_data(rng, ((9,), (9,)))),
    Case("mod-adjfloat", lambda a, b: (a % b) * (2.5 % b), ((), ()), distributed=False,
         data=lambda rng: _remainder_data(rng, ((), ()))),
    Case("absolute", lambda x: abs(x) * x, ((6,),), data=lambda rng: [_signed(rng, (6,))]),
    Case("sum-all", lambda x: crk.sum(x * x), ((7, 3),)),
    Case("sum-axis0", lambda x: crk.sum(x * x, axis=0), ((7, 3),)),
    Case("sum-axis1", lambda x: x.sum(axis=1), ((7, 3),)),
    Case("mean", lambda x: crk.mean(x) * crk.mean(x * x, axis=0), ((7, 3),)),
    Case("dot-global", lambda x, y: crk.dot(x, y), ((8,), (8,))),
    Case("inner-global", lambda x, y: crk.inner(x, y) * crk.inner(x, x), ((8,), (8,))),
    Case("vdot-global", lambda x, y: np.vdot(x, y), ((4, 3), (4, 3))),
    Case("matmul-vec-mat-global", lambda x, m: x @ m, ((6,), (6, 3))),
    Case("matmul-dist-rep", lambda x, w: x @ w, ((7, 3), (3, 2)), replicated_args=(1,)),
    Case("matmul-rep", lambda a, b: a @ b, ((3, 4), (4, 2)), distributed=False),
    Case("matmul-batched", lambda a, b: a @ b, ((2, 3, 4), (4,)), distributed=False),
    Case("matmul-vec-vec", lambda a, b: a @ b, ((4,), (4,)), distributed=False),
    Case("matmul-vec-batched", lambda a, b: a @ b, ((3,), (2, 3, 2)), distributed=False),
    Case("outer", lambda a, b: crk.outer(a, b), ((3,), (4,)), distributed=False),
    Case("trace", lambda a: crk.trace(a @ a), ((3, 3),), distributed=False),
    Case("norm", lambda x: crk.norm(x) * crk.norm(x), ((7, 3),)),
    Case("norm-vector", lambda x: np.linalg.norm(x), ((9,),)),
    Case("getitem-column", lambda x: x[:, 1] * x[:, 2], ((7, 3),)),
    Case("getitem-fancy", lambda x: x[[0, 2, 0]] * 2.0, ((5,),), distributed=False),
    Case("getitem-scalar", lambda x: x[1] * x[2], ((5,),), distributed=False),
    Case("reshape", lambda x: np.reshape(x, (-1, 2, 2)) * 1.5, ((5, 4),)),
    Case("ravel-T", lambda x: x.T.ravel() * x.ravel()[::-1], ((3, 4),), distributed=False),
    Case("transpose-keep0", lambda x: np.transpose(x, (0, 2, 1)) ** 2.0, ((4, 2, 3),)),
    Case("squeeze-expand", lambda x: crk.expand_dims(crk.squeeze(x, axis=1), 1) * x,
         ((5, 1),)),
    Case("concatenate-axis1", lambda x, y: crk.concatenate([x, y * y], axis=1),
         ((6, 2), (6, 3))),
    Case("concatenate-axis0", lambda x, y: crk.concatenate([x, y]), ((3,), (4,)),
         distributed=False),
    Case("stack-axis1", lambda x, y: crk.stack([x, y], axis=1) ** 2.0, ((6,), (6,))),
    Case("stack-axis0", lambda x, y: crk.stack([x, y]), ((3,), (3,)), distributed=False),
    Case("where", lambda x, y: crk.where(np.asarray(x) > 0, x * x, y), ((9,), (9,)),
         data=lambda rng: [_signed(rng, (9,)), rng.uniform(-1, 1, 9)]),
    Case("at-set", lambda x, y: x.at[:, 0].set(y[:, 1] * 2.0), ((6, 2), (6, 2))),
    Case("at-add", lambda x, y: x.at[:, 1].add(y[:, 0] ** 2.0), ((6, 2), (6, 2))),
    Case("copy", lambda x: crk.copy(x) * x, ((6,),)),
    Case("array-of-adjfloats", lambda a, b: crk.array([a * b, a + b, b]), ((), ()),
         distributed=False),
    Case("python-abs-min-max", lambda a, b: abs(a) * max(a, b) + min(b, a) ** 2.0 - max(a, 0.9),
         ((), ()), distributed=False, data=lambda rng: _separated(rng, ((), ()))),
    Case("python-round", lambda a: a * round(a, 1) + round(a) * a ** 2.0, ((),),
         distributed=False, domain=(0.61, 0.64)),
    Case("adjfloat-chain", lambda a, b: np.exp(a * b) / (1.0 + b ** 2.0) - np.sin(a), ((), ()),
         distributed=False),
]


# -- array functions, ufunc handlers and methods --------------------------------------------------
FUNCTION_CASES = [
    # reductions and scans
    _case("sum-scalar", lambda a: np.sum(a), ((),), np.sum),
    _case("sum-axis1", lambda x: np.sum(x, axis=1), ((6, 3),), np.sum),
    _case("sum-axis0-keepdims", lambda x: np.sum(x * x, axis=0, keepdims=True), ((6, 3),),
          np.sum),
    _case("mean-scalar", lambda a: np.mean(a), ((),), np.mean),
    _case("mean-axes", lambda x: np.mean(x, axis=(0, 2)), ((5, 2, 3),), np.mean),
    _case("prod-scalar", lambda a: np.prod(a), ((),), np.prod),
    _case("prod-all", lambda x: np.prod(x), ((6, 2),), np.prod, domain=POSITIVE),
    _case("prod-with-zero", lambda x: np.prod(x, axis=0), ((6, 2),), np.prod, data=_with_zero),
    _case("prod-axis1-keepdims", lambda x: np.prod(x, axis=1, keepdims=True), ((7, 3),),
          np.prod),
    _case("max-scalar", lambda a: np.max(a), ((),), (np.max, np.amax)),
    _case("min-scalar", lambda a: np.amin(a), ((),), (np.min, np.amin)),
    _case("max-all", lambda x: np.max(x), ((6, 2),), np.max,
          data=lambda rng: [spread(rng, (6, 2))]),
    _case("amax-axis0", lambda x: np.amax(x, axis=0), ((7, 3),), np.amax,
          data=lambda rng: [spread(rng, (7, 3))]),
    _case("min-axis1", lambda x: np.min(x, axis=1), ((7, 3),), np.min,
          data=lambda rng: [spread(rng, (7, 3))]),
    _case("amin-keepdims", lambda x: np.amin(x, axis=(0, 1), keepdims=True), ((5, 2, 2),),
          np.amin, data=lambda rng: [spread(rng, (5, 2, 2))]),
    _case("ptp-scalar", lambda a: np.ptp(a) + a, ((),), np.ptp),
    _case("ptp-axis0", lambda x: np.ptp(x, axis=0), ((7, 2),), np.ptp,
          data=lambda rng: [spread(rng, (7, 2))]),
    _case("cumsum-scalar", lambda a: np.cumsum(a), ((),), np.cumsum),
    _case("cumsum-flat", lambda x: np.cumsum(x), ((5, 3),), np.cumsum),
    _case("cumsum-axis0", lambda x: np.cumsum(x * x, axis=0), ((7, 2),), np.cumsum),
    _case("cumsum-axis1", lambda x: np.cumsum(x, axis=1), ((7, 3),), np.cumsum),
    _case("trapezoid-axis1", lambda y: np.trapezoid(y, axis=1), ((6, 4),), np.trapezoid),
    _case("trapezoid-x", lambda y, x: np.trapezoid(y, x), ((5,), (5,)), np.trapezoid,
          distributed=False),
    _case("trapezoid-dx", lambda y, d: np.trapezoid(y, dx=d), ((5,), ()), np.trapezoid,
          distributed=False),
    _case("trapezoid-x-2d", lambda y, x: np.trapezoid(y, x, axis=1), ((6, 4), (6, 4)),
          np.trapezoid),
    # statistics
    _case("average-scalar", lambda a: np.average(a), ((),), np.average),
    _case("average-weights", lambda x, w: np.average(x, weights=w), ((6, 2), (6, 2)),
          np.average, domain=((-1.0, 1.0), POSITIVE)),
    _case("average-weights-axis1", lambda x, w: np.average(x, axis=1, weights=w),
          ((6, 3), (3,)), np.average, domain=((-1.0, 1.0), POSITIVE), replicated_args=(1,)),
    _case("average-weights-axis0", lambda x, w: np.average(x, axis=0, weights=w, keepdims=True),
          ((7, 2), (7,)), np.average, domain=((-1.0, 1.0), POSITIVE)),
    _case("var-scalar", lambda a: np.var(a) + a, ((),), np.var),
    _case("var-all", lambda x: np.var(x), ((6, 2),), np.var),
    _case("var-axis0-ddof", lambda x: np.var(x, axis=0, ddof=1), ((7, 3),), np.var),
    _case("std-scalar", lambda a: np.std(a) + a, ((),), np.std),
    _case("std-axis1", lambda x: np.std(x, axis=1), ((6, 3),), np.std),
    _case("std-ddof", lambda x: np.std(x, ddof=1, keepdims=True), ((7, 2),), np.std),
    _case("median-scalar", lambda a: np.median(a), ((),), np.median),
    _case("median-odd", lambda x: np.median(x), ((5,),), np.median, distributed=False,
          data=lambda rng: [spread(rng, (5,))]),
    _case("median-even-axis", lambda x: np.median(x, axis=1, keepdims=True), ((3, 4),),
          np.median, distributed=False, data=lambda rng: [spread(rng, (3, 4))]),
    # products
    _case("dot-scalars", lambda a, b: np.dot(a, b), ((), ()), np.dot),
    _case("dot-rows", lambda x, w: np.dot(x, w), ((6, 3), (3,)), np.dot, replicated_args=(1,)),
    _case("dot-3d", lambda a, b: np.dot(a, b), ((2, 3, 4), (3, 4, 2)), np.dot,
          distributed=False),
    _case("inner-scalars", lambda a, b: np.inner(a, b), ((), ()), np.inner),
    _case("inner-2d", lambda a, b: np.inner(a, b), ((3, 4), (2, 4)), np.inner,
          distributed=False),
    _case("vdot-scalars", lambda a, b: np.vdot(a, b), ((), ()), np.vdot),
    _case("vdot-global", lambda x, y: np.vdot(x, y), ((4, 3), (4, 3)), np.vdot),
    _case("outer-scalars", lambda a, b: np.outer(a, b), ((), ()), np.outer),
    _case("outer-rows", lambda x, y: np.outer(x, y), ((6,), (3,)), np.outer,
          replicated_args=(1,)),
    _case("einsum-matmul-rows", lambda x, w: np.einsum("ij,jk->ik", x, w), ((6, 3), (3, 2)),
          np.einsum, replicated_args=(1,)),
    _case("einsum-dot", lambda x, y: np.einsum("i,i->", x, y), ((8,), (8,)), np.einsum),
    _case("einsum-columns-dot", lambda x, y: np.einsum("ij,ij->j", x, y), ((7, 3), (7, 3)),
          np.einsum),
    _case("einsum-sum-all", lambda x: np.einsum("ij->", x) * np.einsum("ij->j", x),
          ((6, 2),), np.einsum),
    _case("einsum-diagonal", lambda a: np.einsum("ii->i", a), ((3, 3),), np.einsum,
          distributed=False),
    _case("einsum-trace-implicit", lambda a, b: np.einsum("ii", a) * np.einsum("ij,jk", a, b),
          ((3, 3), (3, 2)), np.einsum, distributed=False),
    _case("einsum-ellipsis", lambda x, w: np.einsum("...j,jk->...k", x, w),
          ((5, 3, 4), (4, 2)), np.einsum, replicated_args=(1,)),
    _case("einsum-broadcast", lambda x, y: np.einsum("...i,...i->...", x, y),
          ((4, 1, 3), (2, 3)), np.einsum, replicated_args=(1,)),
    _case("einsum-outer-rows", lambda x, y: np.einsum("i,j->ij", x, y), ((6,), (3,)),
          np.einsum, replicated_args=(1,)),
    _case("einsum-three", lambda a, b, c: np.einsum("ij,jk,k->i", a, b, c),
          ((5, 3), (3, 4), (4,)), np.einsum, replicated_args=(1, 2)),
    _case("einsum-sublists", lambda x, v: np.einsum(x, [0, 1], v, [1], [0]), ((6, 3), (3,)),
          np.einsum, replicated_args=(1,)),
    _case("einsum-scalars", lambda a, b: np.einsum(",->", a, b) + np.einsum("", a),
          ((), ()), np.einsum),
    _case("tensordot-1", lambda x, w: np.tensordot(x, w, axes=1), ((6, 3), (3, 2)),
          np.tensordot, replicated_args=(1,)),
    _case("tensordot-pairs", lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1])),
          ((3, 4), (4, 3)), np.tensordot, distributed=False),
    _case("tensordot-global", lambda x, y: np.tensordot(x, y, axes=([0], [0])),
          ((7, 3), (7, 2)), np.tensordot),
    _case("tensordot-scalars", lambda a, b: np.tensordot(a, b, axes=0), ((), ()),
          np.tensordot),
    _case("trace", lambda a: np.trace(a), ((3, 3),), np.trace, distributed=False),
    _case("norm", lambda x: np.linalg.norm(x), ((6, 2),), np.linalg.norm),
    _case("norm-scalar", lambda a: np.linalg.norm(a), ((),), np.linalg.norm,
          data=lambda rng: [_signed(rng, ())]),
    _case("matmul-ufunc", lambda x, w: np.matmul(x, w), ((6, 3), (3, 2)), np.matmul,
          replicated_args=(1,)),
    _case("vecdot-rows", lambda x, y: np.vecdot(x, y), ((6, 3), (6, 3)), np.vecdot),
    _case("vecdot-axis0", lambda x, y: np.vecdot(x, y, axis=0), ((7, 3), (7, 3)), np.vecdot),
    _case("matvec", lambda a, v: np.matvec(a, v), ((6, 2, 3), (3,)), np.matvec,
          replicated_args=(1,)),
    _case("vecmat", lambda v, a: np.vecmat(v, a), ((6, 3), (3, 2)), np.vecmat,
          replicated_args=(1,)),
    # shapes, joins, differences, shifts, selections
    _case("reshape-scalar", lambda a: np.reshape(a, (1, 1)), ((),), np.reshape),
    _case("reshape-rows", lambda x: np.reshape(x, (-1, 2, 2)) * x[:, :1, None], ((5, 4),),
          np.reshape),
    _case("ravel-scalar", lambda a: np.ravel(a), ((),), np.ravel),
    _case("ravel-rows", lambda x: np.ravel(x), ((5, 3),), np.ravel),
    _case("squeeze", lambda x: np.squeeze(x), ((6, 1, 2),), np.squeeze),
    _case("squeeze-scalar", lambda a: np.squeeze(a), ((),), np.squeeze),
    _case("expand-dims", lambda x: np.expand_dims(x, 1), ((6, 2),), np.expand_dims),
    _case("expand-dims-scalar", lambda a: np.expand_dims(a, 0), ((),), np.expand_dims),
    _case("transpose-keep0", lambda x: np.transpose(x, (0, 2, 1)), ((4, 2, 3),), np.transpose),
    _case("transpose-scalar", lambda a: np.transpose(a), ((),), np.transpose),
    _case("swapaxes", lambda x: np.swapaxes(x, 1, 2), ((4, 2, 3),), np.swapaxes),
    _case("moveaxis", lambda x: np.moveaxis(x, 2, 1), ((4, 2, 3),), np.moveaxis),
    _case("concatenate-axis1", lambda x, y: np.concatenate([x, y * y], axis=1),
          ((6, 2), (6, 3)), np.concatenate),
    _case("stack-scalars", lambda a, b: np.stack([a, b * b]), ((), ()), np.stack),
    _case("stack-axis1", lambda x, y: np.stack([x, y], axis=1) ** 2.0, ((6,), (6,)), np.stack),
    _case("hstack", lambda x, y: np.hstack([x, y]), ((3,), (4,)), np.hstack,
          distributed=False),
    _case("hstack-scalars", lambda a, b: np.hstack([a, b]), ((), ()), np.hstack),
    _case("vstack", lambda x, y: np.vstack([x, y]), ((2, 3), (1, 3)), np.vstack,
          distributed=False),
    _case("vstack-scalars", lambda a, b: np.vstack([a, b]), ((), ()), np.vstack),
    _case("copy", lambda x: np.copy(x) * x, ((6,),), np.copy),
    _case("copy-scalar", lambda a: np.copy(a) * a, ((),), np.copy),
    _case("broadcast-to", lambda x: np.broadcast_to(x, (4, 3)), ((3,),), np.broadcast_to,
          distributed=False),
    _case("broadcast-to-scalar", lambda a: np.broadcast_to(a, (3,)), ((),), np.broadcast_to),
    _case("diff-axis1", lambda x: np.diff(x * x, axis=1), ((6, 4),), np.diff),
    _case("diff-n2", lambda x: np.diff(x, n=2), ((6,),), np.diff, distributed=False),
    _case("diff-prepend", lambda x: np.diff(x, prepend=0.5, append=x[0]), ((5,),), np.diff,
          distributed=False),
    _case("roll-axis1", lambda x: np.roll(x, 1, axis=1) * x, ((6, 3),), np.roll),
    _case("roll-flat", lambda x: np.roll(x, 2) * x, ((3, 4),), np.roll, distributed=False),
    _case("roll-scalar", lambda a: np.roll(a, 1), ((),), np.roll),
    _case("flip-axis1", lambda x: np.flip(x, axis=1) * x, ((6, 3),), np.flip),
    _case("flip-all", lambda x: np.flip(x) * x, ((3, 4),), np.flip, distributed=False),
    _case("flip-scalar", lambda a: np.flip(a), ((),), np.flip),
    _case("sort-axis1", lambda x: np.sort(x, axis=1) * np.arange(3.0), ((6, 3),), np.sort,
          data=lambda rng: [spread(rng, (6, 3))]),
    _case("sort-flat", lambda x: np.sort(x, axis=None) * np.arange(12.0), ((3, 4),), np.sort,
          distributed=False, data=lambda rng: [spread(rng, (3, 4))]),
    _case("sort-scalar", lambda a: np.sort(a, axis=None), ((),), np.sort),
    _case("take-along-axis", lambda x: np.take_along_axis(
        x, np.broadcast_to([[2, 0, 0]], (len(x), 3)), axis=1), ((6, 3),), np.take_along_axis),
    # elementwise
    _case("where-scalars", lambda a, b: np.where(True, a, b) * np.where(False, a, b),
          ((), ()), np.where),
    _case("where-arrays", lambda x, y: np.where(np.asarray(x) > 0, x * x, y), ((9,), (9,)),
          np.where, data=lambda rng: [_signed(rng, (9,)), rng.uniform(-1, 1, 9)]),
    _case("clip-scalar", lambda a: np.clip(a, 0.1, 0.9) * a, ((),), np.clip,
          domain=(0.2, 0.8)),
    _case("clip-array", lambda x: np.clip(x, -0.5, 0.5) * x, ((9,),), np.clip,
          data=lambda rng: [_clip_x(rng, (9,))]),
    _case("clip-bounds", lambda x, lo, hi: np.clip(x, lo, hi), ((6, 2), (), (2,)), np.clip,
          replicated_args=(1, 2),
          data=lambda rng: [_clip_x(rng, (6, 2)), -0.5, np.array([0.5, 0.45])]),
    _case("clip-keywords", lambda x: np.clip(x, min=-0.5) + np.clip(x, max=0.5), ((9,),),
          np.clip, data=lambda rng: [_clip_x(rng, (9,))]),
    _case("interp-x", lambda x: np.interp(x, XP, FP), ((8,),), np.interp,
          data=lambda rng: [_interp_x(rng, 8)]),
    _case("interp-fp", lambda f: np.interp(np.array([0.3, 1.0, -1.0, 1.9]), XP, f), ((4,),),
          np.interp, distributed=False),
    _case("interp-both", lambda x, f: np.interp(x, XP, f, left=-1.0, right=2.0), ((8,), (4,)),
          np.interp, replicated_args=(1,),
          data=lambda rng: [_interp_x(rng, 8), rng.uniform(-1, 1, 4)]),
    _case("interp-scalar", lambda a: np.interp(a, XP, FP), ((),), np.interp,
          data=lambda rng: [float(_interp_x(rng, ()))]),
    _case("polyval-x", lambda x: np.polyval(P, x), ((7,),), np.polyval),
    _case("polyval-p", lambda p: np.polyval(p, np.array([0.5, -1.0, 2.0])), ((4,),),
          np.polyval, distributed=False),
    _case("polyval-both", lambda x, p: np.polyval(p, x), ((7,), (4,)), np.polyval,
          replicated_args=(1,)),
    _case("polyval-scalars", lambda a, b: np.polyval([a, 0.5, b], a), ((), ()), np.polyval),
    _case("nan-to-num", lambda x: np.nan_to_num(x) * x, ((6, 2),), np.nan_to_num),
    _case("nan-to-num-scalar", lambda a: np.nan_to_num(a) * a, ((),), np.nan_to_num),
    _case("real", lambda x: np.real(x) * x, ((6,),), np.real),
    _case("real-scalar", lambda a: np.real(a) * a, ((),), np.real),
    _case("sinc", lambda x: np.sinc(x), ((6, 2),), np.sinc),
    _case("sinc-scalar", lambda a: np.sinc(a), ((),), np.sinc),
    _case("sinc-at-zero", lambda x: np.sinc(x), ((3,),), np.sinc, distributed=False,
          data=lambda rng: [np.array([0.0, 0.4, -0.7])]),
    # ufuncs that need a hand
    _case("copysign", lambda x: np.copysign(x, -x[:, ::-1]), ((6, 2),), np.copysign,
          data=lambda rng: [_signed(rng, (6, 2))]),
    _case("copysign-scalar", lambda a: np.copysign(a, -1.0) * np.copysign(1.0, a), ((),),
          np.copysign, data=lambda rng: [_signed(rng, ())]),
    _case("ldexp", lambda x: np.ldexp(x, 3) + np.ldexp(x, np.array([1, -2])), ((6, 2),),
          np.ldexp),
    _case("ldexp-scalar", lambda a: np.ldexp(a, -2), ((),), np.ldexp),
    _case("divmod", lambda x, y: np.divmod(x, y)[1], ((6,), (6,)), np.divmod,
          data=lambda rng: _remainder_data(rng, ((6,), (6,)))),
    _case("divmod-scalar", lambda a, b: np.divmod(a, b)[1], ((), ()), np.divmod,
          data=lambda rng: _remainder_data(rng, ((), ()))),
    _case("modf", lambda x: np.modf(x)[0], ((6,),), np.modf, domain=(1.2, 1.8)),
    _case("modf-scalar", lambda a: np.modf(a)[0], ((),), np.modf, domain=(-1.8, -1.2)),
    _case("frexp", lambda x: np.frexp(x)[0], ((6,),), np.frexp, domain=(0.55, 0.95)),
    _case("frexp-scalar", lambda a: np.frexp(a)[0], ((),), np.frexp, domain=(2.2, 3.8)),
    _case("conjugate", lambda x: np.conjugate(x) * x, ((6,),), np.conjugate),
    _case("conjugate-scalar", lambda a: np.conj(a) * a, ((),), np.conjugate),
    # ufunc methods
    _case("add-reduce", lambda x: np.add.reduce(x), ((6, 2),), np.add.reduce),
    _case("ufunc-reduce-scalars", lambda a: np.add.reduce(a) * np.multiply.reduce(a)
          + np.maximum.reduce(a) * np.minimum.reduce(a), ((),),
          (np.add.reduce, np.multiply.reduce, np.maximum.reduce, np.minimum.reduce)),
    _case("multiply-reduce", lambda x: np.multiply.reduce(x, axis=1), ((6, 3),),
          np.multiply.reduce),
    _case("maximum-reduce", lambda x: np.maximum.reduce(x), ((7, 2),), np.maximum.reduce,
          data=lambda rng: [spread(rng, (7, 2))]),
    _case("minimum-reduce", lambda x: np.minimum.reduce(x, axis=None), ((7, 2),),
          np.minimum.reduce, data=lambda rng: [spread(rng, (7, 2))]),
    _case("add-accumulate", lambda x: np.add.accumulate(x), ((7, 2),), np.add.accumulate),
]

# Functions numpy itself refuses for 0-d input: on an AdjFloat they must raise as well.
SCALAR_REFUSALS = {
    np.matmul: lambda a: np.matmul(a, a), np.trapezoid: lambda a: np.trapezoid(a),
    np.trace: lambda a: np.trace(a), np.diff: lambda a: np.diff(a),
    np.swapaxes: lambda a: np.swapaxes(a, 0, 1), np.moveaxis: lambda a: np.moveaxis(a, 0, 1),
    np.concatenate: lambda a: np.concatenate([a, a]),
    np.take_along_axis: lambda a: np.take_along_axis(a, np.zeros((), int), 0),
    np.vecdot: lambda a: np.vecdot(a, a), np.matvec: lambda a: np.matvec(a, a),
    np.vecmat: lambda a: np.vecmat(a, a), np.add.accumulate: lambda a: np.add.accumulate(a),
}
# The walk calls each ufunc with recorded values in every argument, except these.
WALK_ARGUMENTS = {np.ldexp: lambda x: (x, 2)}

# Calls of the functions with plain results, on a crk value x.
PLAIN_CALLS = {
    np.argmax: lambda x: np.argmax(x), np.argmin: lambda x: np.argmin(x),
    np.any: lambda x: np.any(x), np.all: lambda x: np.all(x),
    np.count_nonzero: lambda x: np.count_nonzero(x),
    np.allclose: lambda x: np.allclose(x, x), np.array_equal: lambda x: np.array_equal(x, x),
    np.imag: lambda x: np.imag(x), np.shape: lambda x: np.shape(x),
    np.ndim: lambda x: np.ndim(x), np.size: lambda x: np.size(x),
    np.result_type: lambda x: np.result_type(x), np.isclose: lambda x: np.isclose(x, x),
    np.zeros_like: lambda x: np.zeros_like(x), np.ones_like: lambda x: np.ones_like(x),
    np.empty_like: lambda x: np.empty_like(x).shape, np.full_like: lambda x: np.full_like(x, 2),
    np.round: lambda x: np.round(x, 1), np.around: lambda x: np.around(x),
    np.fix: lambda x: np.fix(3.0 * x), np.iscomplexobj: lambda x: np.iscomplexobj(x),
    np.isrealobj: lambda x: np.isrealobj(x), np.argsort: lambda x: np.argsort(x, axis=None),
    np.nonzero: lambda x: np.nonzero(x), np.argwhere: lambda x: np.argwhere(x),
    np.flatnonzero: lambda x: np.flatnonzero(x),
}


def all_ufuncs():
    """Every distinct numpy ufunc in the numpy namespace."""
    found = {}
    for value in vars(np).values():
        if isinstance(value, np.ufunc):
            found[value.__name__] = value
    return [found[name] for name in sorted(found)]


def recorded_ufunc_cases():
    return [case for u in all_ufuncs() if u in dispatch.UFUNCS for case in ufunc_cases(u)]


CLAIMED = set(dispatch.FUNCTIONS) | set(dispatch.UFUNC_HANDLERS) | \
    {getattr(u, m) for u, m in dispatch.UFUNC_METHODS}
