"""Fixtures of the distributed-array tests: run one computation on distributed pieces and on the
whole arrays on one rank (COMM_SELF), and compare everything."""
import numpy as np
import pytest

import crk


def _plain(v):
    return np.asarray(v._ad_create_checkpoint() if hasattr(v, "_ad_create_checkpoint") else v,
                      dtype=float)


def _whole(v, comm):
    """The global value of a crk value: distributed pieces concatenated in rank order."""
    if isinstance(v, crk.ndarray) and v.distributed:
        return np.concatenate(comm.allgather(_plain(v)))
    return _plain(v)


def functional(y):
    """A nonlinear scalar of any crk value, so R2 sees every second-order term."""
    return crk.sum(crk.sin(y)) + crk.sum(y * y)


def _record(fn, data, comm, split, distributed):
    xs = []
    for d in data:
        if distributed:
            xs.append(crk.array(d[split(len(d))], comm=comm, distributed=True))
        else:
            from mpi4py import MPI
            xs.append(crk.array(d, comm=MPI.COMM_SELF, distributed=True))
    y = fn(*xs)
    J = functional(y)
    rf = crk.ReducedFunctional(J, [crk.Control(x) for x in xs])
    return xs, y, J, rf


def _assert_rate(remainders, least, scale):
    """Every convergence rate of a Taylor remainder whose residuals stay above round-off
    (1e-12 |J|) is at least ``least``."""
    floor = 1e-12 * max(1.0, abs(scale))
    residuals, rates = remainders["Residual"], remainders["Rate"]
    assert all(rate > least for k, rate in enumerate(rates) if residuals[k + 1] > floor), \
        remainders


@pytest.fixture
def check_against_serial(comm, assert_replicated):
    """``check(fn, data, split, expected=None)``: ``fn`` maps crk arrays (``data``: global numpy
    arrays, each split along axis 0 by ``split``) to a crk value. Checks, on every rank:

    * the value (gathered) equals ``expected`` (a numpy result on the global arrays) and the
      serial run of ``fn`` on the whole arrays (COMM_SELF); replicated values bit-identical;
    * J = Σ sin(y) + Σ y²: value, gradient, tangent (TLM) and Hessian action equal the
      serial ones; Taylor rates ≈ 2 (gradient) and ≈ 3 (Hessian); adjoint/TLM duality.
    Returns the recorded output ``y``."""
    def check(fn, data, split, expected=None):
        rng = np.random.default_rng(5)
        directions = [rng.uniform(-0.5, 0.5, np.shape(d)) for d in data]
        with crk.Tape():
            _, y_s, J_s, rf_s = _record(fn, data, comm, split, distributed=False)
            grads_s = [_plain(g) for g in rf_s.derivative()]
            hess_s = [_plain(g) for g in rf_s.hessian(directions)]
            tlm_s = rf_s.tlm(directions)
            y_serial = _plain(y_s)
        with crk.Tape():
            xs, y, J, rf = _record(fn, data, comm, split, distributed=True)
            if not (isinstance(y, crk.ndarray) and y.distributed):
                assert_replicated(y)
            value = _whole(y, comm)
            np.testing.assert_allclose(value, y_serial, rtol=1e-13, atol=1e-14)
            if expected is not None:
                np.testing.assert_allclose(value, expected, rtol=1e-13, atol=1e-14)
            assert_replicated(J)
            assert float(J) == pytest.approx(float(J_s), rel=1e-12, abs=1e-14)
            h = [d[split(len(d))] for d in directions]
            grads = rf.derivative()
            for g, g_s in zip(grads, grads_s):
                np.testing.assert_allclose(_whole(g, comm), g_s, rtol=1e-12, atol=1e-13)
            for g, g_s in zip(rf.hessian(h), hess_s):
                np.testing.assert_allclose(_whole(g, comm), g_s, rtol=1e-11, atol=1e-12)
            tlm = rf.tlm(h)
            assert_replicated(tlm)
            assert tlm == pytest.approx(tlm_s, rel=1e-12, abs=1e-13)
            rates = crk.taylor_to_dict(rf, xs, h)
            _assert_rate(rates["R1"], 1.9, float(J))
            _assert_rate(rates["R2"], 2.9, float(J))
            F = crk.ReducedFunction(J, [crk.Control(x) for x in xs])
            assert crk.check_duality(F, h) < 1e-12
        return y
    return check
