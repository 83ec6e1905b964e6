"""crk.parallel.abort_on_uncaught_exception: an exception that escapes on one rank ends the job.

The MPI cases start fresh jobs under ``mpirun -n 3`` from the serial suite (an abort would end the
test runner itself under mpirun). Rank 1 raises while recording, before a global crk.sum the
other ranks wait in: with the hook every rank is gone within seconds, the output names the
exception and the rank, the exit status is non-zero; without it the job hangs (checked, then
killed). Caught failures (collective sections, tape sweeps) keep raising on every rank and never
abort.
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from crk.parallel import abort as abort_module
from crk.parallel import abort_on_uncaught_exception, restore_exception_hooks

RAISE_WHILE_RECORDING = """
import sys, time
import numpy as np
from mpi4py import MPI
import crk
if {install}:
    crk.parallel.abort_on_uncaught_exception()
comm = MPI.COMM_WORLD
with crk.Tape():
    x = crk.array(np.ones(3), comm=comm, distributed=True)
    y = np.sin(x) * 2.0
    if comm.rank == 1:
        print(f"rank 1 raises at {{time.time()!r}}", flush=True)
        raise ValueError("injected failure on rank 1 while recording")
    print("global sum done:", float(crk.sum(y)), flush=True)     # the other ranks wait here
"""

CAUGHT_FAILURES = """
import numpy as np
from mpi4py import MPI
import crk
from crk.parallel import CollectiveError, collective_section
crk.parallel.abort_on_uncaught_exception()
comm = MPI.COMM_WORLD


class FailOnRank1(crk.Block):
    active = False

    def __init__(self, x):
        super().__init__()
        self.add_dependency(x)

    def recompute_component(self, inputs, block_variable, idx, prepared):
        return inputs[0]

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared):
        if self.active and comm.rank == 1:
            raise RuntimeError("injected failure in the adjoint sweep")
        return adj_inputs[0]


caught = []
try:
    with collective_section(comm=comm, where="setup"):
        if comm.rank == 1:
            raise ValueError("injected failure in a collective section")
        crk.sum(crk.array(np.ones(2), comm=comm, distributed=True))
except (ValueError, CollectiveError) as e:
    caught.append(type(e).__name__)
with crk.Tape():
    x = crk.array(np.arange(1.0, 4.0), comm=comm, distributed=True)
    y = crk.array(x.value, comm=comm, distributed=True)
    block = FailOnRank1(x)
    block.add_output(y)
    crk.get_working_tape().add_block(block)
    rf = crk.ReducedFunctional(crk.sum(y * y), crk.Control(x))
    FailOnRank1.active = True
    try:
        rf.derivative()
    except (RuntimeError, CollectiveError) as e:
        caught.append(type(e).__name__)
    FailOnRank1.active = False
    gradient = rf.derivative().value.tolist()          # the tape is usable afterwards
print(f"rank {comm.rank} ok: caught {caught}, gradient {gradient}", flush=True)
"""


def _mpirun():
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    if not os.path.exists(mpirun):
        pytest.skip(f"no mpirun beside {sys.executable}")
    return mpirun


def _job(code, directory):
    """Start ``code`` under mpirun -n 3 in its own process group; output goes to a file."""
    script = os.path.join(directory, "job.py")
    with open(script, "w") as f:
        f.write(code)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "HYDI_", "HYDRA_", "MPI_LOCAL", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), env.get("PYTHONPATH")] if p)
    log = open(os.path.join(directory, "output.txt"), "w")
    job = subprocess.Popen([_mpirun(), "-n", "3", sys.executable, script], stdout=log,
                           stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return job, log


def _output(directory):
    with open(os.path.join(directory, "output.txt")) as f:
        return f.read()


def _wait_for(directory, text, timeout=120.0):
    """Wait until the job's output contains ``text``; the time it was seen."""
    deadline = time.time() + timeout
    while text not in _output(directory):
        assert time.time() < deadline, f"{text!r} never appeared:\n{_output(directory)}"
        time.sleep(0.05)
    return time.time()


def _end(job, log):
    """Kill the job's whole process group (mpirun and every rank) if it is still running."""
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    log.close()


def test_uncaught_exception_on_one_rank_ends_every_rank():
    with tempfile.TemporaryDirectory() as directory:
        job, log = _job(RAISE_WHILE_RECORDING.format(install=True), directory)
        try:
            _wait_for(directory, "rank 1 raises at")
            status = job.wait(timeout=60)
            ended = time.time()
        finally:
            _end(job, log)
        output = _output(directory)
    raised = float(output.split("rank 1 raises at ")[1].split()[0])
    assert ended - raised < 10.0, output
    assert status != 0
    assert "[rank 1/3] ValueError: injected failure on rank 1 while recording" in output
    assert "crk: uncaught ValueError on rank 1 of 3; aborting every rank" in output
    assert "global sum done" not in output          # nobody got past the reduction


def test_without_the_hook_the_job_hangs():
    """The control: the same job without abort_on_uncaught_exception is still running 3 s after
    rank 1 raised (every rank is then killed)."""
    with tempfile.TemporaryDirectory() as directory:
        job, log = _job(RAISE_WHILE_RECORDING.format(install=False), directory)
        try:
            _wait_for(directory, "ValueError: injected failure")
            time.sleep(3.0)
            assert job.poll() is None, _output(directory)
        finally:
            _end(job, log)


def test_caught_failures_do_not_abort():
    """With the hook installed, a failure inside a collective section and one in an adjoint sweep
    still raise on every rank (the original error on rank 1, CollectiveError elsewhere), are
    caught, and the tape works afterwards: the job ends normally."""
    with tempfile.TemporaryDirectory() as directory:
        job, log = _job(CAUGHT_FAILURES, directory)
        try:
            status = job.wait(timeout=120)
        finally:
            _end(job, log)
        output = _output(directory)
    assert status == 0, output
    expected = {0: "['CollectiveError', 'CollectiveError']", 2: "['CollectiveError', "
                "'CollectiveError']", 1: "['ValueError', 'RuntimeError']"}
    for rank, caught in expected.items():
        assert f"rank {rank} ok: caught {caught}" in output, output
    assert "gradient [" in output and "aborting" not in output


# -- the hooks in this (single-process) interpreter ----------------------------------------------
@pytest.fixture
def recorded_hooks(monkeypatch):
    """Stand-in previous hooks that record what reaches them; crk's hooks installed on top."""
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: seen.append(("sys", info[0])))
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(("thread",
                                                                             args.exc_type)))
    abort_on_uncaught_exception()
    yield seen
    restore_exception_hooks()


def test_on_one_process_the_usual_hooks_run(recorded_hooks):
    """Nothing to abort on one process: the exception goes to the previous hooks."""
    assert sys.excepthook is abort_module._excepthook
    assert threading.excepthook is abort_module._thread_excepthook
    try:
        raise KeyError("k")
    except KeyError:
        sys.excepthook(*sys.exc_info())
    worker = threading.Thread(target=lambda: 1 / 0)
    worker.start()
    worker.join()
    assert recorded_hooks == [("sys", KeyError), ("thread", ZeroDivisionError)]


def test_installing_twice_keeps_the_original_hooks(recorded_hooks):
    previous = abort_module._installed[1]
    abort_on_uncaught_exception(comm=None)
    assert abort_module._installed[1] is previous
    restore_exception_hooks()
    assert sys.excepthook is previous[0] and threading.excepthook is previous[1]
    abort_on_uncaught_exception()       # the fixture restores again
