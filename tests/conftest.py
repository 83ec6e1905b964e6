"""Shared fixtures. MPI tests are written in terms of comm.size and run unchanged serially and
under ``mpirun -n N python -m pytest --with-mpi``.

* A watchdog: every test that hangs longer than CRK_TEST_TIMEOUT seconds (default 300) dumps its
  traceback and exits the process, so a deadlock fails fast under mpirun.
* ``comm``: COMM_WORLD. ``split``: this rank's slice of n items (uneven splits on purpose);
  ``splits``: the same, parametrised over uneven splits with and without an empty rank.
* ``assert_replicated``: a value is bit-for-bit identical on every rank.
* ``sine_function``: a DifferentiableFunction class (elementwise sin, hand-written rules) for
  tests to subclass.
"""
import faulthandler
import os
import sys

import numpy as np
import pytest

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
