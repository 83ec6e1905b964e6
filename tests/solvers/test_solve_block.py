"""The solve as a block: Taylor tests of gradients (rate ≈ 2) and Hessian actions (≈ 3) with
respect to θ, a parameter field, the source f (constant and field), Dirichlet and Neumann data;
the tangent-linear/adjoint duality; the same values on any number of ranks."""
import functools

import numpy as np
import pytest

import crk
import solvers
from solvers.functionals import l2_misfit

N = 12
TIGHT = {"taylor_snes_rtol": 1e-14, "taylor_snes_atol": 1e-16, "taylor_ksp_rtol": 1e-13}


@pytest.fixture(autouse=True)
def tight_solves(PETSc):
    """Newton to round-off, so Taylor remainders fall to 1e-14 without solver noise."""
    db = PETSc.Options()
    for k, v in TIGHT.items():
        db[k] = v
    yield
    for k in TIGHT:
        del db[k]


@functools.lru_cache(maxsize=None)
def _flux(dim):
    """κ(x) (ε² + |∇u|²)^((p-2)/2) ∇u + reaction-free, with a nodal field κ and parameter p."""
    import jax.numpy as jnp
    from crk.cr.jax import point_map

    @point_map(((-1, dim), (-1,), ()), (-1, dim))
    def flux(g, kappa, p):
        mu = (0.1 ** 2 + jnp.sum(g * g, axis=1)) ** ((p - 2.0) / 2.0)
        return (kappa * mu)[:, None] * g
    return flux


def _setup(mesh, controls):
    """Record u(controls) and J = ∫(u − d)² + small regularisation; returns (J, control list,
    their values, directions)."""
    x = mesh.coordinates()
    p = crk.AdjFloat(3.0)
    kappa = mesh.field(lambda x: 1.0 + 0.3 * x[:, 0] * x[:, 1])
    f_field = mesh.field(lambda x: 1.0 + x[:, 0])
    f_const = crk.AdjFloat(1.5)
    g_left = crk.AdjFloat(0.2)
    g_field = mesh.field(lambda x: 0.1 * np.sin(3 * x[:, 0]))
    neu = crk.AdjFloat(0.3)
    values = {"p": p, "kappa": kappa, "f_field": f_field, "f_const": f_const,
              "dirichlet_const": g_left, "dirichlet_field": g_field, "neumann": neu}
    directions = {"p": 0.5, "kappa": 0.2 * np.cos(3 * x[:, 1]), "f_field": np.sin(2 * x[:, 0]),
                  "f_const": 1.0, "dirichlet_const": 0.5, "dirichlet_field": x[:, 0] ** 2,
                  "neumann": -1.0}
    bcs = [solvers.DirichletBC("left", g_left), solvers.DirichletBC("bottom", g_field)]
    neumann = [solvers.NeumannBC("right", neu)]
    problem = solvers.NonlinearProblem(mesh, _flux(mesh.dim), state=("grad_u",), dirichlet=bcs,
                                       neumann=neumann, symmetric=True, options_prefix="taylor_")
    f = f_const if "f_const" in controls else f_field
    u = problem.solve(kappa, p, f=f)
    J = l2_misfit(mesh, u, lambda x: 0.05 * x[:, 0]) + 1e-2 * crk.sum(u * u)
    return problem, J, [values[c] for c in controls], [directions[c] for c in controls]


@pytest.mark.mpi
@pytest.mark.parametrize("controls", [["p", "kappa"], ["f_field", "dirichlet_field"],
                                      ["f_const", "dirichlet_const", "neumann"]])
def test_taylor(PETSc, controls):
    with crk.Tape() as tape, solvers.BoxMesh((N, N + 2)) as mesh:
        problem, J, m, h = _setup(mesh, controls)
        with problem:
            rf = crk.ReducedFunctional(J, [crk.Control(c) for c in m], tape=tape)
            values = [c.value if hasattr(c, "value") else float(c) for c in m]
            rates = crk.taylor_to_dict(rf, values, h)
            assert min(rates["R1"]["Rate"]) > 1.9, rates
            assert min(rates["R2"]["Rate"]) > 2.9, rates
            assert crk.check_duality(crk.ReducedFunction(J, [crk.Control(c) for c in m],
                                                         tape=tape), h) < 1e-9


@pytest.mark.mpi
def test_hessian_costs_three_solves(PETSc):
    with crk.Tape() as tape, solvers.BoxMesh((N, N)) as mesh:
        problem, J, m, h = _setup(mesh, ["p", "kappa"])
        with problem:
            rf = crk.ReducedFunctional(J, [crk.Control(c) for c in m], tape=tape)
            rf.derivative()
            before = dict(problem.stats)
            rf.hessian(h)
            assert problem.stats["linear_solves"] - before["linear_solves"] == 3
            assert problem.stats["newton_iterations"] == before["newton_iterations"]


@pytest.mark.mpi
@pytest.mark.parametrize("line_search", ["bt", "l2"])
def test_adjoint_reuses_the_jacobian_of_the_last_residual(PETSc, line_search):
    """With Newton's bt line search the residual evaluations of full Newton steps build the
    Jacobian too, so the adjoint of the latest solve evaluates no Jacobian of the law, while
    an earlier solve of
    the same problem (another point) gets its own; with the l2 line search (residuals at
    points where no Jacobian follows) they are separate. Either way the gradient passes the
    Taylor test."""
    db = PETSc.Options()
    db["taylor_snes_linesearch_type"] = line_search
    try:
        with crk.Tape() as tape, solvers.BoxMesh((N, N)) as mesh, \
                solvers.NonlinearProblem(mesh, _flux(2), state=("grad_u",), symmetric=True,
                                         dirichlet=[solvers.DirichletBC("boundary", 0.0)],
                                         options_prefix="taylor_") as problem:
            assert problem.jacobian_with_residual() == (line_search == "bt")
            kappa = mesh.field(lambda x: 1.0 + 0.3 * x[:, 0] * x[:, 1])
            p1, p2 = crk.AdjFloat(2.5), crk.AdjFloat(3.0)
            u1 = problem.solve(kappa, p1, f=1.0)
            u2 = problem.solve(kappa, p2, f=1.0)
            J = l2_misfit(mesh, u1, 0.0) + l2_misfit(mesh, u2, lambda x: 0.1 * x[:, 0])
            rf = crk.ReducedFunctional(J, [crk.Control(p1), crk.Control(p2)], tape=tape)
            rf.derivative()
            rf([2.6, 3.1])                  # replay both solves at a new point
            before = problem.stats["jacobians"]
            rf.derivative()
            assert problem.stats["jacobians"] - before == (1 if line_search == "bt" else 2)
            rates = crk.taylor_to_dict(rf, [2.6, 3.1], [0.3, -0.2])
            assert min(rates["R1"]["Rate"]) > 1.9, rates
    finally:
        del db["taylor_snes_linesearch_type"]


def _functional_and_gradient(comm, assert_replicated=None):
    """J and dJ/d(p, κ) (κ part gathered in natural order) for the Taylor setup on ``comm``."""
    with crk.Tape(comm=comm) as tape, solvers.BoxMesh((N, N + 2), comm=comm) as mesh:
        problem, J, m, h = _setup(mesh, ["p", "kappa"])
        with problem:
            rf = crk.ReducedFunctional(J, [crk.Control(c) for c in m], tape=tape)
            dp, dk = rf.derivative()
            if assert_replicated is not None:
                assert_replicated(float(J))
                assert_replicated(float(dp))
            return float(J), float(dp), mesh.gather(dk.value)


@pytest.mark.mpi
def test_same_on_every_rank_count(PETSc, comm, assert_replicated):
    from mpi4py import MPI
    J, dp, dk = _functional_and_gradient(comm, assert_replicated)
    verdict = None
    if comm.rank == 0:
        J1, dp1, dk1 = _functional_and_gradient(MPI.COMM_SELF)
        verdict = (abs(J - J1) / abs(J1), abs(dp - dp1) / abs(dp1),
                   float(np.max(np.abs(dk - dk1)) / np.max(np.abs(dk1))))
    verdict = comm.bcast(verdict, root=0)
    assert max(verdict) < 1e-10, verdict


def _backend_flux(backend):
    """The p-Laplacian flux of test_problem in another backend."""
    if backend == "autograd":
        import autograd.numpy as anp
        from crk.cr.autograd import point_map

        @point_map(((-1, 2), ()), (-1, 2))
        def flux(g, p):
            return ((0.01 + anp.sum(g * g, axis=1)) ** ((p - 2.0) / 2.0))[:, None] * g
        return flux
    import tensorflow as tf
    from crk.cr.tensorflow import point_map

    @point_map(((-1, 2), ()), (-1, 2))
    def flux(g, p):
        return ((0.01 + tf.reduce_sum(g * g, axis=1)) ** ((p - 2.0) / 2.0))[:, None] * g
    return flux


@pytest.mark.mpi
@pytest.mark.parametrize("backend", ["autograd", "tensorflow"])
def test_backends_agree_with_jax(PETSc, plaplace, backend):
    """The same law in Autograd / TensorFlow gives JAX's solution, gradient and Hessian."""
    results = []
    with solvers.BoxMesh((8, 8)) as mesh:
        for flux in (plaplace(2, 0.1), _backend_flux(backend)):      # JAX first
            with crk.Tape() as tape, solvers.NonlinearProblem(
                    mesh, flux, symmetric=True, options_prefix="taylor_",
                    dirichlet=[solvers.DirichletBC("boundary", 0.0)]) as problem:
                p = crk.AdjFloat(2.6)
                u = problem.solve(p, f=lambda x: 1.0 + x[:, 0])
                J = l2_misfit(mesh, u, 0.0)
                rf = crk.ReducedFunctional(J, crk.Control(p), tape=tape)
                results.append((mesh.gather(u.value), float(rf.derivative()),
                                float(rf.hessian(1.0))))
                if len(results) == 2:           # (JAX's rates are tested in test_taylor)
                    rates = crk.taylor_to_dict(rf, 2.6, 0.2)
                    assert min(rates["R2"]["Rate"]) > 2.9, rates
    (u1, g1, h1), (u2, g2, h2) = results
    assert np.max(np.abs(u1 - u2)) < 1e-12 * np.max(np.abs(u1))
    assert g2 == pytest.approx(g1, rel=1e-10) and h2 == pytest.approx(h1, rel=1e-9)
