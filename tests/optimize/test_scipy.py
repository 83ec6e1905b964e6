"""crk.optimize.scipy_minimize and crk.minimize: scipy in lock-step on every rank.

Every test runs unchanged on 1, 2 and 3 ranks; fits on distributed controls are compared with
the same fit on MPI.COMM_SELF (the serial answer), and iterates, histories and replicated
results are checked bit-identical on every rank.
"""
import logging

import numpy as np
import pytest
import scipy.optimize

import crk
from crk.optimize import OptimizationError, scipy_minimize
from crk.parallel import CollectiveError

LINE_SEARCH = ["L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP"]
HESSIAN = ["Newton-CG", "trust-ncg", "trust-krylov", "trust-constr"]
#: per method: options for a tight answer, and how close to the minimum it gets
TIGHT = {
    "L-BFGS-B": ({"gtol": 1e-10, "ftol": 1e-15}, 1e-5),
    "BFGS": ({"gtol": 1e-8}, 1e-6),
    "CG": ({"gtol": 1e-7}, 1e-5),
    "TNC": ({"maxfun": 5000, "gtol": 1e-10, "ftol": 1e-15, "xtol": 1e-12}, 1e-4),
    "SLSQP": ({"ftol": 1e-14, "maxiter": 500}, 1e-4),
    "Newton-CG": ({"xtol": 1e-12}, 1e-6),
    "trust-ncg": ({"gtol": 1e-9}, 1e-6),
    "trust-krylov": ({"gtol": 1e-7}, 1e-5),
    "trust-constr": ({"gtol": 1e-10, "xtol": 1e-14}, 1e-6),
}


@pytest.fixture
def scipy_points(monkeypatch):
    """Every x scipy passes to ``fun``, in order (scipy.optimize.minimize wrapped)."""
    points = []
    original = scipy.optimize.minimize

    def recording(fun, x0, *args, **kwargs):
        def recorded(x, *a):
            points.append(np.array(x, dtype=float))
            return fun(x, *a)
        return original(recorded, x0, *args, **kwargs)
    monkeypatch.setattr(scipy.optimize, "minimize", recording)
    return points


def _history(result):
    return np.array([[r.J, r.gradient_norm, r.step] for r in result.history])


# -- convergence, lock-step and the serial answer ---------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("method", LINE_SEARCH + HESSIAN)
def test_rosenbrock_on_replicated_controls(method, rosenbrock, assert_replicated):
    options, tolerance = TIGHT[method]
    with crk.Tape():
        rf = rosenbrock()
        result = scipy_minimize(rf, method=method, options=options, quiet=True)
    x, a = result.controls
    assert isinstance(x, crk.ndarray) and isinstance(a, crk.AdjFloat)
    assert result.success and result.reason == "converged"
    np.testing.assert_allclose(np.append(x.value, float(a)), np.ones(4), atol=tolerance)
    assert result.iterations == len(result.history) - 1 > 0
    assert result.optimizer == f"scipy:{method}"
    for value in (x, float(a), _history(result), result.J, result.gradient_norm):
        assert_replicated(value)


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "Newton-CG", "trust-ncg"])
def test_distributed_fit_runs_in_lock_step_and_matches_serial(
        method, least_squares, comm, scipy_points, assert_replicated, gather_field):
    from mpi4py import MPI
    options, _ = TIGHT[method]
    with crk.Tape():
        result = scipy_minimize(least_squares(comm), method=method, options=options,
                                quiet=True)
    points = np.array(scipy_points)
    assert points.shape[1] == 37 + 1          # the global vector: u (37) then theta
    assert_replicated(points)                  # every rank ran scipy on the same x, always
    assert_replicated(_history(result))
    assert_replicated(float(result.controls[1]))
    del scipy_points[:]
    with crk.Tape(comm=MPI.COMM_SELF):
        serial = scipy_minimize(least_squares(MPI.COMM_SELF), method=method, options=options,
                                quiet=True, comm=MPI.COMM_SELF)
    np.testing.assert_allclose(gather_field(result.controls[0]), serial.controls[0].value,
                               rtol=1e-9, atol=1e-12)
    assert float(result.controls[1]) == pytest.approx(float(serial.controls[1]), rel=1e-9)
    assert result.J == pytest.approx(serial.J, rel=1e-12)
    if comm.size == 1:
        assert result.iterations == serial.iterations


# -- evaluations: one forward and one adjoint per distinct point --------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("method", LINE_SEARCH + HESSIAN)
def test_one_forward_and_at_most_one_adjoint_per_distinct_point(method, least_squares, comm,
                                                                counting_rf):
    options, _ = TIGHT[method]
    with crk.Tape():
        rf = least_squares(comm, rf_class=counting_rf)
        result = scipy_minimize(rf, method=method, options=options, quiet=True)
    forwards = [key for kind, key in rf.calls if kind == "forward"]
    counts = result.evaluations
    assert counts.forward == len(forwards)
    assert counts.adjoint == sum(kind == "adjoint" for kind, _ in rf.calls)
    assert counts.hessian == sum(kind == "hessian" for kind, _ in rf.calls)
    assert counts.points == len(set(forwards)) and counts.failed == 0
    assert counts.adjoint <= counts.points
    if method in HESSIAN:
        rf.assert_reruns_only_for_hessians()
    else:
        assert counts.forward == counts.points            # never a point twice
    if method == "L-BFGS-B":
        assert counts.adjoint == counts.points            # it asks for J and g together
    last = result.history[-1]
    assert last.forward <= counts.forward and last.adjoint <= counts.adjoint


# -- failed steps -------------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("method,failure", [
    ("L-BFGS-B", "nan"), ("L-BFGS-B", "raise"), ("TNC", "raise"), ("BFGS", "nan"),
    ("CG", "raise"), ("SLSQP", "nan"), ("Newton-CG", "raise"), ("trust-ncg", "nan"),
    ("trust-krylov", "raise"), ("trust-constr", "nan")])
def test_failed_steps_are_backtracked(method, failure, quartic, comm, gather_field,
                                      assert_replicated):
    with crk.Tape(), np.errstate(invalid="ignore"):
        rf = quartic(comm, failure)
        result = scipy_minimize(rf, method=method, quiet=True)
    x = gather_field(result.controls)
    assert result.success, result.message
    assert result.evaluations.failed > 0            # the fit did step into the bad region
    assert np.all(x <= quartic.limit)
    np.testing.assert_allclose(x, quartic.minimum, atol=2e-3)
    assert_replicated(_history(result))


def _stuck(comm, mine):
    """Σ (x − 2)², computable only at its starting point (every step fails)."""
    start = np.array([0.5, 0.25, 0.0, 1.0])

    def fun(v):
        if not np.array_equal(v, start[mine]):
            raise RuntimeError("solve diverged")
        return np.array(v)
    stuck = crk.Primitive("stuck", fun)
    crk.defvjp(stuck, lambda g, ans, v: g)
    crk.defjvp(stuck, lambda d, ans, v: d)
    x = crk.array(start[mine], comm=comm, distributed=True)
    return crk.ReducedFunctional(crk.sum((stuck(x) - 2.0) ** 2.0), crk.Control(x)), start


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "Newton-CG", "trust-ncg"])
def test_unrecoverable_failure_stops_at_the_last_good_controls(method, comm, split,
                                                               gather_field):
    with crk.Tape():
        rf, start = _stuck(comm, split(4))
        with pytest.raises(OptimizationError, match="failed_step") as info:
            scipy_minimize(rf, method=method, quiet=True)
        result = info.value.result
        assert result.reason == "failed_step" and not result.success
        np.testing.assert_array_equal(gather_field(result.controls), start)
        assert result.J == pytest.approx(float(np.sum((start - 2.0) ** 2)))
        # the tape stands at the returned controls: the derivative is that at the start
        np.testing.assert_allclose(gather_field(rf.derivative()), 2.0 * (start - 2.0))


# -- the tape after a fit -------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("method", ["L-BFGS-B", "trust-ncg"])
def test_tape_stands_at_the_returned_controls(method, least_squares, comm, split):
    h = [np.linspace(-1.0, 1.0, 37)[split(37)], 0.3]
    with crk.Tape():
        rf = least_squares(comm)
        result = scipy_minimize(rf, method=method, options={"maxiter": 4},
                                raise_on_failure=False, quiet=True)
        u, theta = result.controls
        derivative, hessian = rf.derivative(), rf.hessian(h)
    with crk.Tape():
        fresh = least_squares(comm, u0=0.0)
        fresh([u.value, float(theta)])
        reference, reference_hessian = fresh.derivative(), fresh.hessian(h)
    for got, want in zip(list(derivative) + list(hessian),
                         list(reference) + list(reference_hessian)):
        np.testing.assert_array_equal(np.asarray(got.value if hasattr(got, "value") else got),
                                      np.asarray(want.value if hasattr(want, "value") else want))


# -- bounds and fixed controls ------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "SLSQP", "trust-constr"])
def test_active_bounds(method, comm, split, gather_field, assert_replicated):
    n = 11
    mine = split(n)
    target = np.linspace(-2.0, 2.0, n)
    lower = np.where(np.arange(n) % 2 == 0, -1.0, -np.inf)       # every other entry bounded
    with crk.Tape():
        x = crk.array(np.zeros(n)[mine], comm=comm, distributed=True)
        s = crk.AdjFloat(0.0)
        J = 0.5 * crk.sum((x - target[mine]) ** 2.0) + (s - 3.0) ** 2.0
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(s)])
        options = {"TNC": {"maxfun": 2000}, "trust-constr": {"gtol": 1e-10, "xtol": 1e-12,
                                                              "barrier_tol": 1e-12}}
        result = scipy_minimize(rf, method=method, options=options.get(method), quiet=True,
                                bounds=[(lower[mine], 0.5), (None, 2.0)])
    tolerance = 1e-5 if method == "trust-constr" else 1e-6       # an interior-point method
    np.testing.assert_allclose(gather_field(result.controls[0]),
                               np.clip(target, lower, 0.5), atol=tolerance)
    assert float(result.controls[1]) == pytest.approx(2.0, abs=tolerance)
    assert_replicated(float(result.controls[1]))
    assert result.gradient_norm < 1e-5            # projected: zero at an active bound


@pytest.mark.mpi
def test_bounds_of_a_single_control_and_clipped_start(rosenbrock, assert_replicated):
    with crk.Tape():
        x = crk.array([3.0, -3.0])
        rf = crk.ReducedFunctional(crk.sum((x - 1.0) ** 2.0), crk.Control(x))
        result = scipy_minimize(rf, bounds=(-1.0, [2.0, 0.0]), quiet=True)
    np.testing.assert_allclose(result.controls.value, [1.0, 0.0], atol=1e-8)
    assert result.history[0].J == pytest.approx(1.0 + 4.0)     # started at the clipped (2, -1)


@pytest.mark.mpi
def test_derivative_components_fix_the_other_controls(least_squares, comm, gather_field):
    with crk.Tape():
        rf = least_squares(comm, u0=0.25)
        result = scipy_minimize(rf, derivative_components=[1], quiet=True)
    np.testing.assert_array_equal(gather_field(result.controls[0]), np.full(37, 0.25))
    data = np.sin(np.linspace(0.0, 3.0, 37))
    u = 0.25        # J(θ) = ½ Σ (θu + u³/10 − d)² + ½ (θ − 1.5)²
    theta = (np.sum((data - 0.1 * u ** 3) * u) + 1.5) / (37 * u * u + 1.0)
    assert float(result.controls[1]) == pytest.approx(theta, rel=1e-6)
    with crk.Tape():
        rf = least_squares(comm)
        result = scipy_minimize(rf, derivative_components=(0,), quiet=True)
    assert float(result.controls[1]) == 0.5 and result.success


# -- the pyadjoint call ----------------------------------------------------------------------------
@pytest.mark.mpi
def test_minimize_returns_the_controls_as_given(rosenbrock):
    with crk.Tape():
        x = crk.array([0.0, 0.0])
        rf = crk.ReducedFunctional(crk.sum((x - 1.5) ** 2.0), crk.Control(x))
        single = crk.minimize(rf)
        assert isinstance(single, crk.ndarray)
        np.testing.assert_allclose(single.value, [1.5, 1.5], atol=1e-8)
    with crk.Tape():
        rf = rosenbrock()
        both = crk.minimize(rf, method="BFGS", options={"gtol": 1e-8})
        assert isinstance(both, list) and len(both) == 2
        np.testing.assert_allclose(both[0].value, np.ones(3), atol=1e-5)
        with pytest.raises(OptimizationError, match="max_iterations") as info:
            crk.minimize(rosenbrock(), method="L-BFGS-B", options={"maxiter": 2})
        assert info.value.result.iterations == 2 and info.value.result.reason == "max_iterations"


# -- callback, logging, files ----------------------------------------------------------------------
@pytest.mark.mpi
def test_callback_sees_every_iteration_and_can_stop(least_squares, comm, split):
    seen = []
    piece = (len(range(37)[split(37)]),)

    def callback(record, controls):
        u, theta = controls
        assert isinstance(u, crk.ndarray) and u.value.shape == piece
        seen.append((record.iteration, record.J, float(theta)))
        return record.iteration == 3
    with crk.Tape():
        result = scipy_minimize(least_squares(comm), callback=callback, quiet=True)
    assert result.reason == "stopped_by_callback" and not result.success
    assert [s[0] for s in seen] == [1, 2, 3] and result.iterations == 3
    assert [r.J for r in result.history[1:]] == [s[1] for s in seen]
    assert float(result.controls[1]) == seen[-1][2]


@pytest.mark.mpi
def test_callback_error_on_one_rank_raises_on_all(least_squares, comm):
    def callback(record, controls):
        if comm.rank == comm.size - 1 and record.iteration == 2:
            raise KeyError("plot failed")
    with crk.Tape():
        with pytest.raises((KeyError, CollectiveError), match="plot failed"):
            scipy_minimize(least_squares(comm), callback=callback, quiet=True)


@pytest.mark.mpi
@pytest.mark.parametrize("quiet", [False, True])
def test_rank_zero_logs_one_line_per_iteration(least_squares, comm, caplog, quiet):
    with crk.Tape(), caplog.at_level(logging.INFO, logger="crk.optimize"):
        result = scipy_minimize(least_squares(comm), quiet=quiet)
    lines = [r.getMessage() for r in caplog.records if r.name == "crk.optimize"]
    iteration_lines = [m for m in lines if m.startswith("iteration")]
    if quiet or comm.rank != 0:
        assert lines == []
    else:
        assert len(iteration_lines) == result.iterations + 1
        assert "J " in iteration_lines[-1] and "|g| " in iteration_lines[-1]
        assert "converged" in lines[-1]


@pytest.mark.mpi
def test_unknown_gradient_norm_is_a_blank_column(least_squares, comm, caplog, assert_replicated):
    """trust-ncg reports an accepted iterate before it asks for the derivative there: its
    history holds NaN and the log line leaves the |g| column blank (no "nan"), aligned."""
    with crk.Tape(), caplog.at_level(logging.INFO, logger="crk.optimize"):
        result = scipy_minimize(least_squares(comm), method="trust-ncg",
                                options={"gtol": 1e-9})
    assert result.success
    norms = np.array([r.gradient_norm for r in result.history])
    assert_replicated(norms)
    assert not np.isnan(norms[0]) and np.isnan(norms[1:]).any()
    lines = [r.getMessage() for r in caplog.records if r.name == "crk.optimize"]
    if comm.rank != 0:
        assert lines == []
        return
    assert not any("nan" in line for line in lines), lines
    iteration_lines = [line for line in lines if line.startswith("iteration")]
    assert len(iteration_lines) == len(result.history)
    for record, line in zip(result.history, iteration_lines):
        column = " " * 9 if np.isnan(record.gradient_norm) else f"{record.gradient_norm:.3e}"
        assert f"iteration {record.iteration:4d}  J {record.J:.10e}  |g| {column}  step " \
            in line, line


@pytest.mark.mpi
def test_result_writes_json_and_csv_from_rank_zero(least_squares, comm, tmp_path):
    import csv
    import json
    import os
    directory = comm.bcast(str(tmp_path), root=0)
    with crk.Tape():
        result = scipy_minimize(least_squares(comm), quiet=True)
    result.to_json(os.path.join(directory, "fit.json"))
    result.history_to_csv(os.path.join(directory, "history.csv"))
    with open(os.path.join(directory, "fit.json")) as f:
        data = json.load(f)
    assert data["iterations"] == result.iterations and data["reason"] == "converged"
    assert data["J"] == result.J and data["evaluations"]["forward"] == result.evaluations.forward
    assert len(data["controls"][0]) == 37 and data["controls"][1] == float(result.controls[1])
    assert len(data["history"]) == len(result.history)
    with open(os.path.join(directory, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.history)
    assert float(rows[-1]["J"]) == result.history[-1].J
    assert int(rows[-1]["forward"]) == result.history[-1].forward


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.mpi
def test_bad_arguments_name_themselves(least_squares, comm, split):
    with crk.Tape():
        rf = least_squares(comm)
        with pytest.raises(ValueError, match="unknown method 'Simplex'"):
            scipy_minimize(rf, method="Simplex")
        with pytest.raises(ValueError, match="method 'BFGS' does not take bounds"):
            scipy_minimize(rf, method="BFGS", bounds=[None, (0, 1)])
        with pytest.raises(ValueError, match=r"one \(lower, upper\) pair \(or None\) per "
                                             r"control, 2 in all"):
            scipy_minimize(rf, bounds=[(0, 1)])
        with pytest.raises(ValueError, match="lower bound 2.0 exceeds upper bound 1.0"):
            scipy_minimize(rf, bounds=[None, (2.0, 1.0)])
        with pytest.raises(ValueError, match=r"derivative_components \[2\] out of range"):
            scipy_minimize(rf, derivative_components=[0, 2])
        with pytest.raises(ValueError, match="'derivative_components' is empty"):
            scipy_minimize(rf, derivative_components=[])
        with pytest.raises(TypeError, match="argument 'rf' must be a crk.ReducedFunctional"):
            scipy_minimize(lambda m: 0.0)
        with pytest.raises(ValueError, match="resume=True needs a checkpoint_file"):
            scipy_minimize(rf, resume=True)
        # a wrong piece on one rank only: every rank raises
        piece = np.zeros(len(range(37)[split(37)]) + (comm.rank == 0))
        with pytest.raises((ValueError, CollectiveError),
                           match=r"lower bound of control 0 must be a number or an array of "
                                 r"shape"):
            scipy_minimize(rf, bounds=[(piece, None), None])


@pytest.mark.mpi
def test_failure_at_the_start_is_an_error(quartic, comm):
    with crk.Tape(), np.errstate(invalid="ignore"):
        x = crk.array(np.full(3, 0.9))
        rf = crk.ReducedFunctional(crk.sum(crk.sqrt(0.66 - x)), crk.Control(x))
        with pytest.raises(ValueError, match="could not be computed at the starting controls: "
                                             "J is nan"):
            scipy_minimize(rf, quiet=True)
