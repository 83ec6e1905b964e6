"""The fit problems' reduced functionals at their --quick size: the misfit, gradient and Hessian
action are replicated and equal to the serial problem's (COMM_SELF), and pass Taylor tests
(rate ≈ 2 with the gradient, ≈ 3 with the Hessian action)."""
import numpy as np
import pytest

import crk
from crk.fit.problems import get_problem

#: problem -> relative tolerance of parallel against serial (Newton and Krylov tolerances: the
#: multigrid hierarchy depends on the split)
PROBLEMS = {"hyperelastic": 1e-7, "network_cr_tf": 1e-7, "transient_source": 1e-7}


@pytest.fixture(scope="module")
def PETSc():
    pytest.importorskip("petsc4py")
    from solvers.petsc import import_petsc
    return import_petsc()


def _direction(problem, value, k):
    """A direction for one control: a number, a smooth field of the owned coordinates (the same
    global field on every split, the size of a source) or a fixed random vector of a
    replicated array."""
    if np.ndim(value) == 0:
        return 0.3 * (k + 1) * float(value)
    value = np.asarray(value)
    if getattr(problem, "field_controls", ()) and k in problem.field_controls:
        x = problem.mesh.coordinates()
        return 30.0 * np.cos(3.0 * x[:, 0]) * np.sin(2.0 * x[:, 1] + 0.5)
    return np.random.default_rng(k).uniform(-0.5, 0.5, value.shape)


def _whole(problem, value, k):
    value = np.asarray(crk.overloaded_type.plain_value(value), dtype=float)
    if getattr(problem, "field_controls", ()) and k in problem.field_controls:
        return problem.mesh.gather(value)
    return value


def _evaluate(problem):
    rf = problem.rf
    start = list(problem.start)
    J = float(rf(start))
    h = [_direction(problem, v, k) for k, v in enumerate(start)]
    gradient = [_whole(problem, g, k) for k, g in enumerate(rf.derivative())]
    hessian = [_whole(problem, g, k) for k, g in enumerate(rf.hessian(h))]
    return J, gradient, hessian, h


@pytest.mark.mpi
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_derivatives_equal_serial_and_pass_taylor(PETSc, comm, assert_replicated,
                                                          name):
    from mpi4py import MPI
    cls = get_problem(name)
    rtol = PROBLEMS[name]
    with crk.Tape(), cls(cls.quick, comm=MPI.COMM_SELF) as serial:
        J_s, gradient_s, hessian_s, _ = _evaluate(serial)
    with crk.Tape(), cls(cls.quick, comm=comm) as problem:
        J, gradient, hessian, h = _evaluate(problem)
        assert_replicated(np.asarray(J))
        assert J == pytest.approx(J_s, rel=rtol)
        for g, g_s, kind in ((gradient, gradient_s, "gradient"),
                             (hessian, hessian_s, "Hessian action")):
            for k, (a, b) in enumerate(zip(g, g_s)):
                assert_replicated(a)
                np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b)),
                                           err_msg=f"{name}: {kind} of control {k}")
        rates = crk.taylor_to_dict(problem.rf, list(problem.start), h)
        floor = 1e-11 * max(1.0, abs(J))
        assert min(_rates_above(rates["R1"], floor)) > 1.9, rates
        assert min(_rates_above(rates["R2"], floor)) > 2.9, rates


def _rates_above(remainders, floor):
    """The Taylor rates of the steps whose remainder stays above ``floor`` (the round-off of
    the Newton and Krylov solves, relative tolerances 10⁻¹⁰); at least two of them."""
    residuals, rates = remainders["Residual"], remainders["Rate"]
    kept = [rate for k, rate in enumerate(rates) if residuals[k + 1] > floor]
    assert len(kept) >= 2, f"Taylor remainders under the round-off floor {floor}: {residuals}"
    return kept
