"""crk.optimize.tao_minimize: PETSc TAO on a distributed Vec of the controls, on 1, 2, 3 ranks,
compared with the serial answer."""
import numpy as np
import pytest

import crk
from crk.optimize import OptimizationError, scipy_minimize, tao_minimize
from crk.parallel import CollectiveError

pytest.importorskip("petsc4py")


@pytest.fixture
def PETSc():
    from solvers.petsc import import_petsc
    return import_petsc()


def _history(result):
    return np.array([[r.J, r.gradient_norm, r.step] for r in result.history])


def _serial_answer(least_squares):
    from mpi4py import MPI
    with crk.Tape(comm=MPI.COMM_SELF):
        result = scipy_minimize(least_squares(MPI.COMM_SELF), options={"gtol": 1e-11,
                                                                        "ftol": 1e-16},
                                quiet=True, comm=MPI.COMM_SELF)
    return result.controls[0].value, float(result.controls[1]), result.J


@pytest.mark.mpi
@pytest.mark.parametrize("tao_type", ["bqnls", "blmvm", "lmvm", "nls", "bntr"])
def test_tao_types_reach_the_serial_answer(tao_type, least_squares, comm, gather_field,
                                           assert_replicated, counting_rf):
    u_serial, theta_serial, J_serial = _serial_answer(least_squares)
    with crk.Tape():
        rf = least_squares(comm, rf_class=counting_rf)
        result = tao_minimize(rf, tao_type=tao_type, gatol=1e-9, grtol=0.0, quiet=True)
    assert result.success and result.reason == "converged", result.message
    assert result.optimizer == f"tao:{tao_type}"
    np.testing.assert_allclose(gather_field(result.controls[0]), u_serial, atol=1e-7)
    assert float(result.controls[1]) == pytest.approx(theta_serial, abs=1e-7)
    assert result.J == pytest.approx(J_serial, rel=1e-9)
    newton = tao_type in ("nls", "ntr", "bnls", "bntr")
    counts = result.evaluations
    assert (counts.hessian > 0) == newton     # the shell Hessian, for Newton types
    assert counts.forward == sum(kind == "forward" for kind, _ in rf.calls)
    assert counts.adjoint == sum(kind == "adjoint" for kind, _ in rf.calls) <= counts.points
    if newton:
        rf.assert_reruns_only_for_hessians()
    else:
        assert counts.forward == counts.points                    # one run per point
    assert result.iterations == len(result.history) - 1 > 0
    for value in (float(result.controls[1]), result.J, _history(result)):
        assert_replicated(value)


@pytest.mark.mpi
@pytest.mark.parametrize("tao_type", ["bqnls", "nls"])
def test_replicated_controls_live_on_rank_zero(tao_type, rosenbrock, assert_replicated):
    with crk.Tape():
        result = tao_minimize(rosenbrock(), tao_type=tao_type, gatol=1e-9, quiet=True)
    x, a = result.controls
    np.testing.assert_allclose(np.append(x.value, float(a)), np.ones(4), atol=1e-6)
    assert_replicated(x)
    assert_replicated(float(a))


@pytest.mark.mpi
@pytest.mark.parametrize("tao_type", ["bqnls", "blmvm", "bnls"])
def test_tao_bounds_active_and_infinite(tao_type, comm, split, gather_field, assert_replicated):
    n = 11
    mine = split(n)
    target = np.linspace(-2.0, 2.0, n)
    lower = np.where(np.arange(n) % 2 == 0, -1.0, -np.inf)
    with crk.Tape():
        x = crk.array(np.zeros(n)[mine], comm=comm, distributed=True)
        s = crk.AdjFloat(0.0)
        J = 0.5 * crk.sum((x - target[mine]) ** 2.0) + (s - 3.0) ** 2.0
        rf = crk.ReducedFunctional(J, [crk.Control(x), crk.Control(s)])
        result = tao_minimize(rf, tao_type=tao_type, bounds=[(lower[mine], 0.5), (None, 2.0)],
                              gatol=1e-10, quiet=True)
    np.testing.assert_allclose(gather_field(result.controls[0]), np.clip(target, lower, 0.5),
                               atol=1e-8)
    assert float(result.controls[1]) == pytest.approx(2.0, abs=1e-8)
    assert_replicated(float(result.controls[1]))


@pytest.mark.mpi
@pytest.mark.parametrize("tao_type,failure", [("bqnls", "nan"), ("bqnls", "raise"),
                                              ("blmvm", "raise"), ("nls", "nan")])
def test_tao_backtracks_failed_steps(tao_type, failure, quartic, comm, gather_field):
    with crk.Tape(), np.errstate(invalid="ignore"):
        result = tao_minimize(quartic(comm, failure), tao_type=tao_type, gatol=1e-9,
                              quiet=True)
    x = gather_field(result.controls)
    assert result.success, result.message
    assert result.evaluations.failed > 0
    np.testing.assert_allclose(x, quartic.minimum, atol=1e-6)


@pytest.mark.mpi
def test_tape_stands_at_the_tao_answer(least_squares, comm, split):
    h = [np.linspace(-1.0, 1.0, 37)[split(37)], 0.3]
    with crk.Tape():
        rf = least_squares(comm)
        result = tao_minimize(rf, tao_type="nls", max_iterations=3, raise_on_failure=False,
                              quiet=True)
        assert result.reason == "max_iterations"
        u, theta = result.controls
        derivative, hessian = rf.derivative(), rf.hessian(h)
    with crk.Tape():
        fresh = least_squares(comm)
        fresh([u.value, float(theta)])
        reference, reference_hessian = fresh.derivative(), fresh.hessian(h)
    for got, want in zip(list(derivative) + list(hessian),
                         list(reference) + list(reference_hessian)):
        np.testing.assert_array_equal(crk.overloaded_type.plain_value(got),
                                      crk.overloaded_type.plain_value(want))


# -- options: defaults first, the command line wins ---------------------------------------------
@pytest.mark.mpi
def test_command_line_options_win_over_defaults(least_squares, PETSc):
    options = PETSc.Options()
    options.setValue("-crk_tao_type", "blmvm")
    options.setValue("-crk_tao_max_it", "2")
    try:
        with crk.Tape():
            result = tao_minimize(least_squares(PETSc.COMM_WORLD.tompi4py()), tao_type="nls",
                                  max_iterations=50, raise_on_failure=False, quiet=True,
                                  petsc_options={"tao_max_it": 30, "tao_gatol": 1e-12})
    finally:
        options.delValue("-crk_tao_type")
        options.delValue("-crk_tao_max_it")
    assert result.optimizer == "tao:blmvm"
    assert result.reason == "max_iterations" and result.iterations == 2
    assert not options.hasName("-crk_tao_gatol")           # the fit's defaults are removed
    with crk.Tape():
        result = tao_minimize(least_squares(PETSc.COMM_WORLD.tompi4py()), quiet=True,
                              options_prefix="fit_", petsc_options={"tao_max_it": 3},
                              raise_on_failure=False)
    assert result.optimizer == "tao:bqnls" and result.iterations == 3


# -- the Riesz map: gradient norm and initial quasi-Newton Hessian ------------------------------
def _quadratic(comm, split, n=24):
    """J = ½ Σ a x² − Σ b x with a from 1 to 1000: its exact Hessian is diag(a)."""
    mine = split(n)
    a = np.geomspace(1.0, 1000.0, n)[mine]
    b = np.linspace(1.0, 2.0, n)[mine]
    x = crk.array(np.zeros(len(a)), comm=comm, distributed=True)
    rf = crk.ReducedFunctional(0.5 * crk.sum(a * x ** 2.0) - crk.sum(b * x), crk.Control(x))
    return rf, a, b


@pytest.mark.mpi
@pytest.mark.parametrize("tao_type,form", [("bqnls", "mat"), ("blmvm", "mat"),
                                           ("lmvm", "callable"), ("bqnls", "list")])
def test_riesz_map_is_the_initial_hessian_and_the_gradient_norm(tao_type, form, comm, split,
                                                                PETSc, gather_field):
    with crk.Tape():
        rf, a, b = _quadratic(comm, split)
        plain = tao_minimize(rf, tao_type=tao_type, gatol=1e-9, grtol=0.0, quiet=True,
                             max_iterations=10, raise_on_failure=False)
    mat = None
    if form == "mat":
        n_local = len(a)
        mat = PETSc.Mat().createAIJ(((n_local, PETSc.DECIDE), (n_local, PETSc.DECIDE)),
                                    nnz=1, comm=comm)
        start, _ = mat.getOwnershipRange()
        for i, value in enumerate(a):
            mat.setValue(start + i, start + i, value)
        mat.assemble()
        riesz = mat
    else:
        def to_gradient(derivative):          # applies M⁻¹ = diag(1/a)
            return derivative.value / a
        riesz = to_gradient if form == "callable" else [to_gradient]
    try:
        with crk.Tape():
            rf, a, b = _quadratic(comm, split)
            result = tao_minimize(rf, tao_type=tao_type, riesz_map=riesz, gatol=1e-9,
                                  grtol=0.0, quiet=True)
    finally:
        if mat is not None:
            mat.destroy()
    np.testing.assert_allclose(gather_field(result.controls), np.concatenate(
        comm.allgather(b / a)), rtol=1e-8)
    # the exact Hessian as initial quasi-Newton Hessian: the first step is a Newton step
    assert result.iterations <= 2 < plain.iterations
    # TAO's gradient norm is the dual norm sqrt(g·M⁻¹g): at the start g = −b (the bnk/bqnk
    # family reports the l2 norm of its Fischer-Burmeister residual instead)
    weight = 1.0 if tao_type == "bqnls" else 1.0 / a
    g_norm = np.sqrt(sum(comm.allgather(float(np.sum(b * b * weight)))))
    assert result.history[0].gradient_norm == pytest.approx(g_norm, rel=1e-12)


# -- callback, resume, errors ----------------------------------------------------------------------
@pytest.mark.mpi
def test_tao_callback_stops_and_fit_resumes(least_squares, comm, tmp_path, gather_field):
    import os
    path = os.path.join(comm.bcast(str(tmp_path), root=0), "tao.ckpt")
    seen = []

    def callback(record, controls):
        seen.append(record.iteration)
        return record.iteration == 3
    with crk.Tape():
        first = tao_minimize(least_squares(comm), gatol=1e-10, grtol=0.0, quiet=True,
                             callback=callback, checkpoint_file=path)
    assert first.reason == "stopped_by_callback" and seen == [1, 2, 3]
    with crk.Tape():
        resumed = tao_minimize(least_squares(comm), gatol=1e-10, grtol=0.0, quiet=True,
                               checkpoint_file=path)
    with crk.Tape():
        whole = tao_minimize(least_squares(comm), gatol=1e-10, grtol=0.0, quiet=True)
    assert resumed.resumed_from == 3 and resumed.success
    assert resumed.iterations - 3 < whole.iterations
    np.testing.assert_allclose(gather_field(resumed.controls[0]),
                               gather_field(whole.controls[0]), atol=1e-8)


@pytest.mark.mpi
def test_tao_callback_error_on_one_rank_raises_on_all(least_squares, comm):
    def callback(record, controls):
        if comm.rank == comm.size - 1 and record.iteration == 2:
            raise KeyError("plot failed")
    with crk.Tape():
        with pytest.raises((KeyError, CollectiveError), match="plot failed"):
            tao_minimize(least_squares(comm), callback=callback, quiet=True)


@pytest.mark.mpi
def test_failing_hessian_action_ends_the_fit_at_the_last_good_controls(comm, split,
                                                                        gather_field):
    def hvp(g, dargs, ans, dans, v):
        if comm.rank == comm.size - 1:
            raise RuntimeError("second-order solve diverged")
        return 6.0 * g * v * dargs[0]
    cube = crk.Primitive("cube", lambda v: v ** 3)
    crk.defvjp(cube, lambda g, ans, v: 3.0 * g * v ** 2)
    crk.defjvp(cube, lambda d, ans, v: 3.0 * d * v ** 2)
    crk.defhvp(cube, hvp)
    start = np.linspace(0.5, 1.5, 5)
    with crk.Tape():
        x = crk.array(start[split(5)], comm=comm, distributed=True)
        rf = crk.ReducedFunctional(crk.sum(cube(x) - 3.0 * x), crk.Control(x))
        with pytest.raises(OptimizationError, match="failed_step") as info:
            tao_minimize(rf, tao_type="nls", quiet=True)
        result = info.value.result
        assert "the Hessian action failed" in result.message
        np.testing.assert_array_equal(gather_field(result.controls), start)
        np.testing.assert_allclose(gather_field(rf.derivative()), 3.0 * start ** 2 - 3.0)


@pytest.mark.mpi
def test_tao_trust_radius_is_kept_for_the_resumed_fit(least_squares, comm, tmp_path):
    import os

    from crk.optimize import restart
    path = os.path.join(comm.bcast(str(tmp_path), root=0), "tao.ckpt")
    with crk.Tape():
        tao_minimize(least_squares(comm), tao_type="bntr", quiet=True, checkpoint_file=path,
                     callback=lambda record, controls: record.iteration == 2)
    assert restart.read(path).optimizer_state["trust_radius"] > 0.0
    with crk.Tape():
        resumed = tao_minimize(least_squares(comm), tao_type="bntr", quiet=True,
                               checkpoint_file=path)
    assert resumed.success and resumed.resumed_from == 2


@pytest.mark.mpi
def test_tao_bad_arguments(least_squares, comm, PETSc):
    with crk.Tape():
        rf = least_squares(comm)
        with pytest.raises(TypeError, match="argument 'riesz_map' must be a PETSc Mat, a "
                                            "callable or a list"):
            tao_minimize(rf, riesz_map=np.eye(2))
        with pytest.raises(TypeError, match="one callable \\(or None\\) per control, 2 in all"):
            tao_minimize(rf, riesz_map=[None])
        wrong = PETSc.Mat().createAIJ(((3, PETSc.DECIDE), (3, PETSc.DECIDE)), nnz=1, comm=comm)
        wrong.assemble()
        try:
            with pytest.raises((ValueError, CollectiveError), match="riesz_map has sizes"):
                tao_minimize(rf, riesz_map=wrong)
        finally:
            wrong.destroy()
        with pytest.raises(OptimizationError, match="max_iterations") as info:
            tao_minimize(rf, max_iterations=1, quiet=True)
        assert info.value.result.iterations == 1
        with pytest.raises((ValueError, CollectiveError), match="lower bound 2.0 exceeds upper "
                                                                "bound 1.0"):
            tao_minimize(rf, bounds=[None, (2.0, 1.0)])
