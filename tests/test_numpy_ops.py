"""Every recorded numpy operation: Taylor tests of all four derivative kinds, with replicated and
distributed controls, and — under mpirun — equality with the serial result and bit-identical
replicated values on every rank.

Each case maps control arrays (global data; axis 0 is split over ranks when distributed) to a
crk value; the tested functional is J = Σ sin(F) + 0.1 Σ F², nonlinear so that R2 exercises each
operation's second-order rule. Every case with an array control also runs with distributed
controls, where it must give the serial result — or, where crk refuses an operation on distributed
arrays (``refused``), raise that error on every rank.
"""
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import crk
from crk.parallel.collective import sum_over_ranks

from conftest import split_range


@dataclass
class Case:
    name: str
    fn: object
    shapes: tuple                 # global shapes of the controls
    refused: str = None           # with distributed controls: the error expected instead
    positive: bool = False        # controls drawn in (0.5, 1.5) for log/sqrt/power...
    replicated_args: tuple = ()   # argument indices that stay replicated in distributed runs
    kwargs: dict = field(default_factory=dict)


CASES = [
    Case("add", lambda x, y: x + y, ((7, 3), (7, 3))),
    Case("add-broadcast-param", lambda x, p: x + p, ((7, 3), (3,)), replicated_args=(1,)),
    Case("subtract", lambda x, y: x - 2.0 * y, ((7, 3), (7, 3))),
    Case("rsub-scalar", lambda x: 1.5 - x, ((6,),)),
    Case("multiply", lambda x, y: x * y, ((7, 3), (7, 3))),
    Case("multiply-param", lambda x, p: x * p, ((7, 3), (3,)), replicated_args=(1,)),
    Case("multiply-adjfloat", lambda x, a: a * x * a, ((6,), ()), replicated_args=(1,)),
    Case("divide", lambda x, y: x / y, ((7, 3), (7, 3)), positive=True),
    Case("rdivide-param", lambda x, p: p / x, ((7, 3), (3,)), positive=True,
         replicated_args=(1,)),
    Case("power-const", lambda x: x ** 3.0, ((6, 2),), positive=True),
    Case("power-both", lambda x, y: x ** y, ((6, 2), (6, 2)), positive=True),
    Case("power-param-exponent", lambda x, p: x ** p, ((6, 2), ()), positive=True,
         replicated_args=(1,)),
    Case("rpow", lambda x: 2.0 ** x, ((6,),)),
    Case("negative", lambda x: -x, ((6,),)),
    Case("mod", lambda x, y: (x % y) * (x % 0.7), ((9,), (9,))),
    Case("mod-adjfloat", lambda a, b: (a % b) * (2.5 % b), ((), ())),
    Case("maximum", lambda x, y: np.maximum(x, y), ((9,), (9,))),
    Case("minimum", lambda x, y: np.minimum(x, y), ((9,), (9,))),
    Case("exp", lambda x: np.exp(x), ((6, 2),)),
    Case("expm1", lambda x: np.expm1(x), ((6,),)),
    Case("log", lambda x: np.log(x), ((6, 2),), positive=True),
    Case("log1p", lambda x: np.log1p(x), ((6,),), positive=True),
    Case("sin", lambda x: np.sin(x), ((6, 2),)),
    Case("cos", lambda x: np.cos(x), ((6, 2),)),
    Case("tan", lambda x: np.tan(x), ((6,),)),
    Case("sinh", lambda x: np.sinh(x), ((6,),)),
    Case("cosh", lambda x: np.cosh(x), ((6,),)),
    Case("tanh", lambda x: np.tanh(x), ((6, 2),)),
    Case("arctan", lambda x: np.arctan(x), ((6,),)),
    Case("sqrt", lambda x: np.sqrt(x), ((6, 2),), positive=True),
    Case("square", lambda x: np.square(x), ((6,),)),
    Case("reciprocal", lambda x: np.reciprocal(x), ((6,),), positive=True),
    Case("absolute", lambda x: abs(x) * x, ((6,),), positive=True),
    Case("sum-all", lambda x: crk.sum(x * x), ((7, 3),)),
    Case("sum-axis0", lambda x: crk.sum(x * x, axis=0), ((7, 3),)),
    Case("sum-axis1", lambda x: x.sum(axis=1), ((7, 3),)),
    Case("mean", lambda x: crk.mean(x) * crk.mean(x * x, axis=0), ((7, 3),)),
    Case("dot-global", lambda x, y: crk.dot(x, y), ((8,), (8,))),
    Case("inner-global", lambda x, y: crk.inner(x, y) * crk.inner(x, x), ((8,), (8,))),
    Case("vdot-global", lambda x, y: np.vdot(x, y), ((4, 3), (4, 3))),
    Case("matmul-vec-mat-global", lambda x, m: x @ m, ((6,), (6, 3))),
    Case("matmul-dist-rep", lambda x, w: x @ w, ((7, 3), (3, 2)), replicated_args=(1,)),
    Case("matmul-rep", lambda a, b: a @ b, ((3, 4), (4, 2)),
         refused="both arguments are distributed, so the contraction must run over their "
                 "distributed axis 0"),
    Case("matmul-batched", lambda a, b: a @ b, ((2, 3, 4), (4,)), replicated_args=(1,)),
    Case("matmul-batched-both", lambda a, b: a @ b, ((2, 3, 4), (4,)),
         refused="both arguments are distributed"),
    Case("matmul-vec-vec", lambda a, b: a @ b, ((4,), (4,))),
    Case("matmul-vec-batched", lambda a, b: a @ b, ((3,), (2, 3, 2)),
         refused="a distributed second argument must be 1-D or 2-D"),
    Case("outer", lambda a, b: crk.outer(a, b), ((3,), (4,)), replicated_args=(1,)),
    Case("outer-both", lambda a, b: crk.outer(a, b), ((3,), (4,)),
         refused="at most one argument may be distributed"),
    Case("trace", lambda a: crk.trace(a @ a), ((3, 3),), refused="both arguments are distributed"),
    Case("norm", lambda x: crk.norm(x) * crk.norm(x), ((7, 3),)),
    Case("norm-vector", lambda x: np.linalg.norm(x), ((9,),)),
    Case("getitem-column", lambda x: x[:, 1] * x[:, 2], ((7, 3),)),
    Case("getitem-fancy", lambda x: x[[0, 2, 0]] * 2.0, ((5,),)),
    Case("getitem-scalar", lambda x: x[1] * x[2], ((5,),)),
    Case("reshape", lambda x: np.reshape(x, (-1, 2, 2)) * 1.5, ((5, 4),)),
    Case("ravel-T", lambda x: x.T.ravel() * x.ravel()[::-1], ((3, 4),),
         refused="a distributed array must keep its distributed axis 0 first"),
    Case("ravel-reversed", lambda x: x.ravel() * x.ravel()[::-1], ((3, 4),)),
    Case("transpose-keep0", lambda x: np.transpose(x, (0, 2, 1)) ** 2.0, ((4, 2, 3),)),
    Case("squeeze-expand", lambda x: crk.expand_dims(crk.squeeze(x, axis=1), 1) * x,
         ((5, 1),)),
    Case("concatenate-axis1", lambda x, y: crk.concatenate([x, y * y], axis=1),
         ((6, 2), (6, 3))),
    Case("concatenate-axis0", lambda x, y: crk.concatenate([x, y]), ((3,), (4,))),
    Case("stack-axis1", lambda x, y: crk.stack([x, y], axis=1) ** 2.0, ((6,), (6,))),
    Case("stack-axis0", lambda x, y: crk.stack([x, y]), ((3,), (3,)),
         refused="stacking distributed arrays along axis 0 would move their distributed axis"),
    Case("where", lambda x, y: crk.where(np.asarray(x) > 0, x * x, y), ((9,), (9,))),
    Case("at-set", lambda x, y: x.at[:, 0].set(y[:, 1] * 2.0), ((6, 2), (6, 2))),
    Case("at-add", lambda x, y: x.at[:, 1].add(y[:, 0] ** 2.0), ((6, 2), (6, 2))),
    Case("copy", lambda x: crk.copy(x) * x, ((6,),)),
    Case("array-of-adjfloats", lambda a, b: crk.array([a * b, a + b, b]), ((), ())),
    Case("adjfloat-chain", lambda a, b: np.exp(a * b) / (1.0 + b ** 2.0) - np.sin(a), ((), ())),
]


def _data(case, seed=0):
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    lo, hi = (0.5, 1.5) if case.positive else (-1.0, 1.0)
    if case.name == "where":          # keep clear of the switching surface
        return [np.sign(rng.uniform(-1, 1, s)) * rng.uniform(0.3, 1.0, s) for s in case.shapes]
    if case.name.startswith("mod"):     # x / y in (2.1, 2.5) and x / 0.7 in (3.1, 3.5): no jumps
        x = rng.uniform(2.2, 2.4, case.shapes[0])
        y = rng.uniform(0.95, 1.05, case.shapes[1])
        return [float(x), float(y)] if case.shapes[0] == () else [x, y]
    if case.name in ("maximum", "minimum", "absolute"):
        a = rng.uniform(lo, hi, case.shapes[0])
        return [a] + [a + np.sign(rng.uniform(-1, 1, s)) * rng.uniform(0.2, 0.5, s)
                      for s in case.shapes[1:]]
    return [rng.uniform(lo, hi, s) if s else float(rng.uniform(lo, hi)) for s in case.shapes]


def _functional(case, args):
    out = case.fn(*args, **case.kwargs)
    return crk.sum(crk.sin(out)) + 0.1 * crk.sum(out * out)


def _controls(case, data, comm, distributed):
    values = []
    for i, v in enumerate(data):
        if np.ndim(v) == 0:
            values.append(crk.AdjFloat(v))
        elif distributed and i not in case.replicated_args:
            values.append(crk.array(v[split_range(len(v), comm)], comm=comm, distributed=True))
        else:
            values.append(crk.array(v, comm=comm))
    return values


def _directions(case, data, comm, distributed, seed=7):
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    dirs = []
    for i, v in enumerate(data):
        d = rng.uniform(-0.5, 0.5, np.shape(v))
        if np.ndim(v) == 0:
            d = float(d)
        elif distributed and i not in case.replicated_args:
            d = d[split_range(len(v), comm)]
        dirs.append(d)
    return dirs


def _serial(case, data, comm):
    with crk.Tape():
        args = _controls(case, data, comm, distributed=False)
        J = _functional(case, args)
        rf = crk.ReducedFunctional(J, [crk.Control(a) for a in args])
        grads = [np.asarray(g._ad_create_checkpoint() if hasattr(g, "_ad_create_checkpoint")
                            else g) for g in rf.derivative()]
        return float(J), grads


# Every operation with replicated controls, and with distributed controls whenever a control is
# an array (scalar controls are replicated by nature).
_OPERATION_RUNS = [pytest.param(case, distributed, id=f"{case.name}-{kind}")
                   for case in CASES
                   for distributed, kind in ((False, "replicated"), (True, "distributed"))
                   if not distributed or any(case.shapes)]


@pytest.mark.mpi
@pytest.mark.parametrize("case,distributed", _OPERATION_RUNS)
def test_operation(case, distributed, comm, assert_replicated):
    data = _data(case)
    with crk.Tape():
        args = _controls(case, data, comm, distributed)
        if distributed and case.refused:
            with pytest.raises(ValueError, match=case.refused):
                case.fn(*args, **case.kwargs)
            return
        J = _functional(case, args)
        rf = crk.ReducedFunctional(J, [crk.Control(a) for a in args])
        rates = crk.taylor_to_dict(rf, args, _directions(case, data, comm, distributed))
        assert min(rates["R0"]["Rate"]) > 0.9, rates["R0"]
        assert min(rates["R1"]["Rate"]) > 1.9, rates["R1"]
        assert min(rates["R2"]["Rate"]) > 2.9, rates["R2"]
        assert crk.check_duality(crk.ReducedFunction(J, [crk.Control(a) for a in args]),
                                 _directions(case, data, comm, distributed, seed=3)) < 1e-12
        grads = rf.derivative()
        assert_replicated(float(J))
        # Against the serial computation on the full data (same on every rank count).
        J_serial, grads_serial = _serial(case, data, comm)
        assert float(J) == pytest.approx(J_serial, rel=1e-12, abs=1e-14)
        for i, (g, gs) in enumerate(zip(grads, grads_serial)):
            g = np.asarray(g._ad_create_checkpoint())
            if args[i]._ad_distributed:
                g = np.concatenate(comm.allgather(g))
            else:
                assert_replicated(g)
            np.testing.assert_allclose(g, gs, rtol=1e-12, atol=1e-13)


def test_every_recorded_primitive_is_covered():
    """Each primitive in the rule tables is reached by some case above (by name)."""
    from crk import numpy_rules, reductions
    from crk.primitive import Primitive
    prims = {p.name for mod in (numpy_rules, reductions) for p in vars(mod).values()
             if isinstance(p, Primitive)}
    covered = set()
    with crk.Tape() as tape:
        for case in CASES:
            args = _controls(case, _data(case), None, False) if False else [
                crk.AdjFloat(v) if np.ndim(v) == 0 else crk.array(v) for v in _data(case)]
            _functional(case, args)
        covered |= {b.prim.name for b in tape.get_blocks() if hasattr(b, "prim")}
    # Global reductions appear only with distributed arrays; record them separately.
    from mpi4py import MPI
    with crk.Tape() as tape:
        x = crk.array(np.ones(3), comm=MPI.COMM_WORLD, distributed=True)
        crk.sum(x), crk.dot(x, x), crk.norm(x)
        covered |= {b.prim.name for b in tape.get_blocks()}
    assert prims - covered == set()


def test_global_reductions_sum_over_ranks(comm):
    """sum/mean/dot/norm of a distributed array are global; the count in mean too."""
    n = 11
    full = np.arange(n, dtype=float) + 1.0
    x = crk.array(full[split_range(n, comm)], comm=comm, distributed=True)
    assert float(crk.sum(x)) == pytest.approx(full.sum(), rel=1e-14)
    assert float(crk.mean(x)) == pytest.approx(full.mean(), rel=1e-14)
    assert float(crk.dot(x, x)) == pytest.approx(full @ full, rel=1e-14)
    assert float(crk.norm(x)) == pytest.approx(np.linalg.norm(full), rel=1e-14)
    assert x.global_shape() == (n,)
    local = crk.sum(x.reshape(-1, 1), axis=1)
    assert local.distributed and local.shape == x.shape


def test_sum_over_ranks_is_deterministic(comm, assert_replicated):
    rng = np.random.default_rng(comm.rank)
    small, big = rng.standard_normal(10), rng.standard_normal(10000)
    for v in (small, big, float(small[0])):
        assert_replicated(sum_over_ranks(v, comm))
