"""Derivative checks of recorded operations, shared by the numpy tests (imported as a module).

A :class:`Case` maps control values (global data; axis 0 is split over ranks when distributed)
to a crk value. :func:`check_case` records J = sum(sin F) + 0.1 sum(F^2) (nonlinear, so the
second-order check exercises each operation's Hessian rules), then asserts

* Taylor remainder rates: R1 ≈ 2, R2 ≈ 3 (all four derivative kinds: replay, TLM, adjoint,
  Hessian), and the adjoint/TLM duality;
* the tape replayed at a nearby point equals a fresh recording there (nothing left the tape);
* against the serial computation on the whole data: J and every gradient equal to round-off;
* replicated values (J, gradients of replicated controls) bit-identical on every rank.

Scalar controls (shape ``()``) are AdjFloats; the others crk arrays.
"""
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

import crk


@dataclass
class Case:
    name: str
    fn: object
    shapes: tuple                 # global shapes of the controls
    distributed: bool = True      # the case also runs with controls distributed along axis 0
    domain: tuple = (-1.0, 1.0)   # where control values are drawn (one pair, or one per control)
    replicated_args: tuple = ()   # argument indices that stay replicated in distributed runs
    data: object = None           # data(rng) -> list of control values, replacing the draw
    covers: tuple = ()            # the numpy functions this case exercises

    @property
    def id(self):
        return self.name


def spread(rng, shape, lo=-1.0, hi=1.0):
    """Distinct values, at least (hi - lo) / (2 size) apart, in random order: no selection
    (max, sort, median...) changes under the Taylor test's perturbations."""
    n = int(np.prod(shape))
    values = np.linspace(lo, hi, n) + rng.uniform(-0.2, 0.2, n) * (hi - lo) / max(n, 2)
    return rng.permutation(values).reshape(shape) if shape else float(values[0])


def case_data(case, seed=0):
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    if case.data is not None:
        return [float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=float)
                for v in case.data(rng)]
    domains = case.domain if np.ndim(case.domain[0]) else [case.domain] * len(case.shapes)
    return [rng.uniform(lo, hi, s) if s else float(rng.uniform(lo, hi))
            for s, (lo, hi) in zip(case.shapes, domains)]


def functional(case, args):
    out = case.fn(*args)
    return crk.sum(crk.sin(out)) + 0.1 * crk.sum(out * out)


def _distributes(case, i, value, distributed):
    return distributed and np.ndim(value) > 0 and i not in case.replicated_args


def controls(case, data, comm, split, distributed):
    values = []
    for i, v in enumerate(data):
        if np.ndim(v) == 0:
            values.append(crk.AdjFloat(v))
        elif _distributes(case, i, v, distributed):
            values.append(crk.array(v[split(len(v))], comm=comm, distributed=True))
        else:
            values.append(crk.array(v, comm=comm))
    return values


def directions(case, data, split, distributed, seed=7):
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    dirs = []
    for i, v in enumerate(data):
        d = rng.choice([-1.0, 1.0], np.shape(v)) * rng.uniform(0.1, 0.5, np.shape(v))
        if np.ndim(v) == 0:
            d = float(d)
        elif _distributes(case, i, v, distributed):
            d = d[split(len(v))]
        dirs.append(d)
    return dirs


def _serial(case, data, comm):
    with crk.Tape():
        args = controls(case, data, comm, None, distributed=False)
        J = functional(case, args)
        rf = crk.ReducedFunctional(J, [crk.Control(a) for a in args])
        return float(J), [np.asarray(crk.overloaded_type.plain_value(g))
                          for g in rf.derivative()]


EPSILONS = tuple(0.004 / 2 ** i for i in range(5))
NOISE = 1e-12       # remainders below this are round-off: their ratios are no rates


def assert_rate(result, expected):
    """Every convergence rate above ``expected``, among remainders above round-off; if every
    remainder is round-off, the expansion is exact to round-off (e.g. a linear function)."""
    residuals = result["Residual"]
    rates = [r for r, smaller in zip(result["Rate"], residuals[1:]) if smaller > NOISE]
    if rates:
        assert min(rates) > expected, result
    else:
        assert max(residuals) < 100 * NOISE, result


def _local(case, values, split, distributed):
    return [v[split(len(v))] if _distributes(case, i, v, distributed) else v
            for i, v in enumerate(values)]


def _assert_replay_is_a_fresh_recording(case, data, comm, split, distributed, rf):
    """The tape replayed at a nearby point equals the case recorded afresh there. Taylor tests
    compare the tape with itself, so they cannot see a value that left the tape and came back as
    a constant; this can. The step (at most 0.005) crosses no kink of the cases' data."""
    moved = [v + 0.01 * d for v, d in zip(data, directions(case, data, split, False))]
    replayed = float(rf(_local(case, moved, split, distributed)))
    with crk.Tape():
        fresh = float(functional(case, controls(case, moved, comm, split, distributed)))
    assert replayed == pytest.approx(fresh, rel=1e-12, abs=1e-14), \
        f"{case.name}: the tape replayed at a new point differs from a fresh recording there"
    rf(_local(case, data, split, distributed))


def check_case(case, distributed, comm, split, assert_replicated):
    """All derivative checks of ``case`` (see the module docstring). Collective."""
    data = case_data(case)
    with crk.Tape():
        args = controls(case, data, comm, split, distributed)
        J = functional(case, args)
        assert isinstance(J, crk.AdjFloat), f"{case.name}: J is {type(J).__name__}"
        rf = crk.ReducedFunctional(J, [crk.Control(a) for a in args])
        rates = crk.taylor_to_dict(rf, args, directions(case, data, split, distributed),
                                   epsilons=EPSILONS)
        assert_rate(rates["R1"], 1.9)
        assert_rate(rates["R2"], 2.9)
        assert crk.check_duality(crk.ReducedFunction(J, [crk.Control(a) for a in args]),
                                 directions(case, data, split, distributed, seed=3)) < 1e-12
        _assert_replay_is_a_fresh_recording(case, data, comm, split, distributed, rf)
        grads = rf.derivative()
        assert_replicated(float(J))
        J_serial, grads_serial = _serial(case, data, comm)
        assert float(J) == pytest.approx(J_serial, rel=1e-12, abs=1e-14)
        for i, (g, gs) in enumerate(zip(grads, grads_serial)):
            g = np.asarray(crk.overloaded_type.plain_value(g))
            if args[i]._ad_distributed:
                g = np.concatenate(comm.allgather(g))
            else:
                assert_replicated(g)
            np.testing.assert_allclose(g, gs, rtol=1e-12, atol=1e-13)


def runs(cases):
    """pytest params: every case with replicated controls, and with distributed controls where
    the case has a distributed meaning."""
    return [pytest.param(case, distributed, id=f"{case.name}-{kind}")
            for case in cases
            for distributed, kind in ((False, "replicated"), (True, "distributed"))
            if case.distributed or not distributed]


def record_block_names(cases, comm=None):
    """Names of the primitives the cases record (serial, replicated controls)."""
    names = set()
    with crk.Tape() as tape:
        for case in cases:
            functional(case, controls(case, case_data(case), comm, None, False))
        names |= {b.prim.name for b in tape.get_blocks() if hasattr(b, "prim")}
    return names
