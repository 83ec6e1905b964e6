"""Shared fixtures. MPI tests are written in terms of comm.size and run unchanged serially and
under ``mpirun -n N python -m pytest --with-mpi``.

* A watchdog: every test that hangs longer than CRK_TEST_TIMEOUT seconds (default 300) dumps its
  traceback and exits the process, so a deadlock fails fast under mpirun.
* ``comm``: COMM_WORLD. ``split``: this rank's slice of n items (uneven splits on purpose);
  ``splits``: the same, parametrised over uneven splits with and without an empty rank.
* ``assert_replicated``: a value is bit-for-bit identical on every rank.
* ``sine_function``: a DifferentiableFunction class (elementwise sin, hand-written rules) for
  tests to subclass.
* ``check_against_serial``: runs a function of distributed arrays on their pieces and on the whole
  arrays on one rank, and compares values and all derivative kinds.
"""
import faulthandler
import os
import sys

import numpy as np
import pytest

import crk

TIMEOUT = float(os.environ.get("CRK_TEST_TIMEOUT", "300"))


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(TIMEOUT, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def comm():
    from mpi4py import MPI
    return MPI.COMM_WORLD


def split_range(n, comm):
    """This rank's contiguous slice of range(n); ranks get different sizes, the last may be
    empty-ish, so tests exercise uneven splits."""
    size, rank = comm.size, comm.rank
    weights = np.arange(1, size + 1, dtype=float)
    bounds = np.concatenate([[0], np.round(np.cumsum(weights) / weights.sum() * n)]).astype(int)
    return slice(int(bounds[rank]), int(bounds[rank + 1]))


@pytest.fixture
def split(comm):
    return lambda n: split_range(n, comm)


def split_range_with_empty(n, comm):
    """Like :func:`split_range`, but rank 1 (the last of two, the middle one of three) holds no
    rows, so neighbour exchanges must skip it."""
    size, rank = comm.size, comm.rank
    if size == 1:
        return slice(0, n)
    weights = np.arange(1, size + 1, dtype=float)
    weights[1] = 0.0
    bounds = np.concatenate([[0], np.round(np.cumsum(weights) / weights.sum() * n)]).astype(int)
    return slice(int(bounds[rank]), int(bounds[rank + 1]))


@pytest.fixture(params=["uneven", "empty-rank"])
def splits(request, comm):
    """``split`` in two flavours: uneven pieces, and uneven pieces with an empty rank."""
    chooser = split_range if request.param == "uneven" else split_range_with_empty
    return lambda n: chooser(n, comm)


def assert_replicated(value, comm):
    """Assert ``value`` (float / array / crk value) is bit-identical on every rank of comm."""
    if hasattr(value, "_ad_create_checkpoint"):
        value = value._ad_create_checkpoint()
    raw = np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes()
    everyone = comm.allgather(raw)
    assert all(r == everyone[0] for r in everyone), "replicated value differs between ranks"


@pytest.fixture(name="assert_replicated")
def _assert_replicated_fixture(comm):
    return lambda value: assert_replicated(value, comm)


def pytest_configure(config):
    config.addinivalue_line("markers", "mpi: runs under mpirun with several ranks (pytest-mpi)")


@pytest.fixture
def sine_function():
    """A :class:`crk.function_block.DifferentiableFunction` computing ``sin`` elementwise, with
    hand-written vjp/jvp/hvp; tests subclass it to add behaviour to ``evaluate``."""
    from crk.function_block import DifferentiableFunction

    class Sine(DifferentiableFunction):
        name = "sine"

        def evaluate(self, args):
            return (np.sin(args[0]),)

        def vjp(self, args, cot, argnums):
            return (np.cos(args[0]) * cot[0],)

        def jvp(self, args, tangents):
            return (np.cos(args[0]) * tangents[0],)

        def hvp(self, args, tangents, cot, argnums):
            return (-np.sin(args[0]) * tangents[0] * cot[0],)
    return Sine


# -- distributed arrays: one computation on distributed pieces and on one rank, compared ----------
def _plain_of(v):
    return np.asarray(v._ad_create_checkpoint() if hasattr(v, "_ad_create_checkpoint") else v,
                      dtype=float)


def _whole(v, comm):
    """The global value of a crk value: distributed pieces concatenated in rank order."""
    if isinstance(v, crk.ndarray) and v.distributed:
        return np.concatenate(comm.allgather(_plain_of(v)))
    return _plain_of(v)


def _functional(y):
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
    J = _functional(y)
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
            grads_s = [_plain_of(g) for g in rf_s.derivative()]
            hess_s = [_plain_of(g) for g in rf_s.hessian(directions)]
            tlm_s = rf_s.tlm(directions)
            y_serial = _plain_of(y_s)
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
