"""Checkpoint files: atomic writes, resuming a fit (in process, on another rank count, and after
SIGKILL under mpirun)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import crk
from crk.optimize import OptimizationError, scipy_minimize
from crk.optimize import restart
from crk.optimize.result import Evaluations, IterationRecord


def _state(x, iterations=2):
    history = [IterationRecord(i, 1.0 / (i + 1), 0.5 ** i, 0.1 * i, i + 1, i + 1, 0, 0.25 * i)
               for i in range(iterations + 1)]
    return restart.FitState(x=np.asarray(x, dtype=float), history=history,
                            optimizer="scipy:L-BFGS-B", free=[0, 1], sizes=[3, 1],
                            iterations=iterations, evaluations=Evaluations(3, 3, 0, 3, 0),
                            seconds=0.5, optimizer_state={"note": "kept"})


def test_checkpoint_file_round_trip_and_atomic_replacement(tmp_path, monkeypatch):
    path = tmp_path / "fit.ckpt"
    restart.write_atomically(path, _state([1.0, 2.0, 3.0, 4.0]))
    back = restart.read(path)
    np.testing.assert_array_equal(back.x, [1.0, 2.0, 3.0, 4.0])
    assert back.history == _state([0.0] * 4).history
    assert (back.free, back.sizes, back.iterations, back.optimizer_state) == \
        ([0, 1], [3, 1], 2, {"note": "kept"})
    assert back.evaluations == Evaluations(3, 3, 0, 3, 0) and not back.finished
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask      # the usual permissions

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        restart.write_atomically(path, _state([9.0, 9.0, 9.0, 9.0]))
    monkeypatch.undo()
    np.testing.assert_array_equal(restart.read(path).x, [1.0, 2.0, 3.0, 4.0])  # untouched
    assert sorted(os.listdir(tmp_path)) == ["fit.ckpt"]                         # no leftovers


def test_unreadable_checkpoint_file_is_named(tmp_path):
    path = tmp_path / "fit.ckpt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="fit.ckpt' is not a readable crk.optimize checkpoint"):
        restart.read(path)


def _figures(record):
    return [getattr(record, f) for f in IterationRecord.FIELDS if f != "seconds"]


def _directory(comm, tmp_path):
    return comm.bcast(str(tmp_path), root=0)


@pytest.mark.mpi
def test_resumed_fit_continues_and_reaches_the_same_answer(least_squares, comm, tmp_path,
                                                            gather_field):
    path = os.path.join(_directory(comm, tmp_path), "fit.ckpt")
    options = {"gtol": 1e-10, "ftol": 1e-15}
    with crk.Tape():
        whole = scipy_minimize(least_squares(comm), options=options, quiet=True)
    with crk.Tape():
        first = scipy_minimize(least_squares(comm), options=options, quiet=True,
                               checkpoint_file=path,
                               callback=lambda record, controls: record.iteration == 3)
    assert first.reason == "stopped_by_callback" and first.iterations == 3
    with crk.Tape():
        rf = least_squares(comm)
        resumed = scipy_minimize(rf, options=options, quiet=True, checkpoint_file=path)
    assert resumed.resumed_from == 3 and resumed.success
    assert resumed.iterations - 3 < whole.iterations          # fewer than starting over
    assert len(resumed.history) == resumed.iterations + 1
    # the history goes on (wall seconds in the file are rank 0's)
    assert [_figures(r) for r in resumed.history[:4]] == [_figures(r) for r in first.history]
    assert resumed.evaluations.forward > first.evaluations.forward
    np.testing.assert_allclose(gather_field(resumed.controls[0]),
                               gather_field(whole.controls[0]), atol=1e-6)
    assert float(resumed.controls[1]) == pytest.approx(float(whole.controls[1]), abs=1e-6)
    # resume=False starts over (and overwrites the file)
    with crk.Tape():
        again = scipy_minimize(least_squares(comm), options=options, quiet=True,
                               checkpoint_file=path, resume=False)
    assert again.resumed_from is None and again.iterations == whole.iterations


@pytest.mark.mpi
def test_trust_radius_is_kept_for_the_resumed_fit(least_squares, comm, tmp_path, monkeypatch):
    import scipy.optimize
    path = os.path.join(_directory(comm, tmp_path), "fit.ckpt")
    with crk.Tape():
        scipy_minimize(least_squares(comm), method="trust-constr", quiet=True,
                       checkpoint_file=path,
                       callback=lambda record, controls: record.iteration == 3)
    radius = restart.read(path).optimizer_state["trust_radius"]
    assert radius > 0.0
    given = []
    original = scipy.optimize.minimize

    def recording(*args, **kwargs):
        given.append(kwargs["options"].get("initial_tr_radius"))
        return original(*args, **kwargs)
    monkeypatch.setattr(scipy.optimize, "minimize", recording)
    with crk.Tape():
        resumed = scipy_minimize(least_squares(comm), method="trust-constr", quiet=True,
                                 checkpoint_file=path)
    assert given == [radius] and resumed.success and resumed.resumed_from == 3


@pytest.mark.mpi
def test_resume_on_another_number_of_ranks(least_squares, comm, tmp_path, gather_field):
    from mpi4py import MPI
    path = os.path.join(_directory(comm, tmp_path), "fit.ckpt")
    if comm.rank == 0:                       # a serial fit, stopped after 2 iterations
        with crk.Tape(comm=MPI.COMM_SELF):
            scipy_minimize(least_squares(MPI.COMM_SELF), quiet=True, checkpoint_file=path,
                           comm=MPI.COMM_SELF,
                           callback=lambda record, controls: record.iteration == 2)
    comm.Barrier()
    with crk.Tape():
        resumed = scipy_minimize(least_squares(comm), quiet=True, checkpoint_file=path)
    with crk.Tape():
        whole = scipy_minimize(least_squares(comm), quiet=True)
    assert resumed.resumed_from == 2 and resumed.success
    np.testing.assert_allclose(gather_field(resumed.controls[0]),
                               gather_field(whole.controls[0]), atol=1e-5)


@pytest.mark.mpi
def test_iteration_budget_spans_resumed_runs(least_squares, comm, tmp_path):
    path = os.path.join(_directory(comm, tmp_path), "fit.ckpt")
    with crk.Tape():
        with pytest.raises(OptimizationError, match="max_iterations"):
            scipy_minimize(least_squares(comm), options={"maxiter": 2}, quiet=True,
                           checkpoint_file=path)
    with crk.Tape():
        result = scipy_minimize(least_squares(comm), options={"maxiter": 4}, quiet=True,
                                checkpoint_file=path, raise_on_failure=False)
    assert result.reason == "max_iterations" and result.iterations == 4
    with crk.Tape():
        result = scipy_minimize(least_squares(comm), options={"maxiter": 4}, quiet=True,
                                checkpoint_file=path, raise_on_failure=False)
    assert result.reason == "max_iterations" and result.iterations == 4


@pytest.mark.mpi
def test_checkpoint_of_other_controls_is_refused(least_squares, rosenbrock, comm, tmp_path):
    path = os.path.join(_directory(comm, tmp_path), "fit.ckpt")
    with crk.Tape():
        scipy_minimize(rosenbrock(), quiet=True, checkpoint_file=path,
                       callback=lambda record, controls: True)
    with crk.Tape():
        with pytest.raises(ValueError, match=r"was written for free controls \[0, 1\] of "
                                             r"global sizes \[3, 1\], but this fit optimises "
                                             r"controls \[0, 1\] of sizes \[37, 1\]"):
            scipy_minimize(least_squares(comm), quiet=True, checkpoint_file=path)


# -- killed with SIGKILL under mpirun, then started again with the same command ----------------
KILLED_FIT = os.path.join(os.path.dirname(__file__), "killed_fit.py")


def _mpirun(n, *args):
    """Run killed_fit.py under ``mpirun -n n`` in a fresh environment; (returncode, result)."""
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    if not os.path.exists(mpirun):
        pytest.skip(f"no mpirun beside {sys.executable}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "HYDI_", "HYDRA_", "MPI_LOCAL", "OMPI_"))}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    run = subprocess.run([mpirun, "-n", str(n), sys.executable, KILLED_FIT, *args],
                         capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    return run.returncode, (json.loads(lines[-1][len("RESULT "):]) if lines else None), run


@pytest.mark.parametrize("optimizer", ["scipy", "tao"])
def test_fit_killed_under_mpirun_resumes_with_the_same_command(optimizer, tmp_path):
    if optimizer == "tao":
        pytest.importorskip("petsc4py")
    code, whole, run = _mpirun(2, optimizer)
    assert code == 0 and whole is not None, run.stderr[-3000:]
    checkpoint = str(tmp_path / "fit.ckpt")
    command = [optimizer, "--checkpoint", checkpoint, "--kill-after", "4"]
    code, killed, run = _mpirun(2, *command)
    assert code != 0 and killed is None                     # killed, no answer
    state = restart.read(checkpoint)
    assert state.iterations == 4 and not state.finished
    code, resumed, run = _mpirun(2, *command)               # the same command again
    assert code == 0 and resumed is not None, run.stderr[-3000:]
    assert resumed["resumed_from"] == 4 and resumed["reason"] == "converged"
    assert resumed["history"] == list(range(resumed["iterations"] + 1))
    assert resumed["iterations"] - 4 < whole["iterations"]  # fewer than starting over
    np.testing.assert_allclose(resumed["u"], whole["u"], atol=1e-6)
    assert resumed["theta"] == pytest.approx(whole["theta"], abs=1e-6)
    assert restart.read(checkpoint).finished
