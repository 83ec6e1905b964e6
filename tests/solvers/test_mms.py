"""Manufactured solutions: Q1 errors fall like h² in L2 and h in H1, in 1D/2D/3D, for linear
and nonlinear laws (JAX, Autograd; TensorFlow laws are checked against JAX ones in
test_solve_block.py), on any number of ranks."""
import numpy as np
import pytest

import solvers
from solvers.functionals import error_norms


def _law(kind, dim):
    """(point map, per-point jnp flux, per-point jnp reaction or None, coefficients, state)."""
    if kind == "linear-jax":
        from crk.cr.jax import point_map

        @point_map(((-1, dim), ()), (-1, dim))
        def flux(g, kappa):
            return kappa * g
        return flux, None, (lambda u, g: 2.0 * g), None, (2.0,), ("grad_u",)
    if kind == "nonlinear-autograd":
        from crk.cr.autograd import point_map

        @point_map(((-1,), (-1, dim), ()), (-1, dim))
        def flux(u, g, a):
            return (1.0 + a * u * u)[:, None] * g

        @point_map(((-1,), (-1, dim), ()), (-1,))
        def reaction(u, g, a):
            return u * u * u
        return flux, reaction, (lambda u, g: (1.0 + 0.5 * u * u)[:, None] * g), \
            (lambda u, g: u ** 3), (0.5,), ("u", "grad_u")
    raise ValueError(kind)


def _exact(dim):
    import jax.numpy as jnp

    def u(x):
        return jnp.reshape(jnp.prod(jnp.sin(jnp.pi * x)) + 0.5 * x[0] * x[-1] + 0.2, (1,))
    return u


# The rates are measured between the two finest grids of each case (the asymptotic ones).
CASES = [(1, "linear-jax", (32, 64)), (2, "linear-jax", (16, 32)), (3, "linear-jax", (8, 16)),
         (2, "nonlinear-autograd", (16, 32)), (1, "nonlinear-autograd", (32, 64))]


@pytest.mark.mpi
@pytest.mark.parametrize("dim,kind,sizes", CASES)
def test_manufactured_convergence(PETSc, manufactured, dim, kind, sizes):
    source, functions = manufactured
    flux, reaction, q, c, coefs, state = _law(kind, dim)
    exact = _exact(dim)
    f = source(q, exact, dim, c)
    value, gradient = functions(exact)
    errors = []
    for n in sizes:
        with solvers.BoxMesh((n,) * dim) as mesh:
            bc = solvers.DirichletBC("boundary", lambda x: value(x)[:, 0])
            with solvers.NonlinearProblem(mesh, flux, reaction=reaction, state=state,
                                          dirichlet=[bc], symmetric=reaction is None) as problem:
                u = problem.solve(*coefs, f=lambda x: f(x)[:, 0])
                errors.append(error_norms(mesh, u, lambda x: value(x)[:, 0],
                                          lambda x: gradient(x)[:, 0, :]))
    l2 = np.array([e[0] for e in errors])
    h1 = np.array([e[1] for e in errors])
    l2_rates = np.log2(l2[:-1] / l2[1:])
    h1_rates = np.log2(h1[:-1] / h1[1:])
    assert l2_rates[-1] == pytest.approx(2.0, abs=0.15), (l2, l2_rates)
    assert h1_rates[-1] == pytest.approx(1.0, abs=0.1), (h1, h1_rates)
