"""Vector problems: linear elasticity (a flux) and compressible Neo-Hookean (a stored energy)
with manufactured solutions; a Neo-Hookean block under 10% stretch (load steps), its reaction
forces in balance, derivatives of the reaction with respect to μ and the stretch; GAMG with the
rigid-body near-null space gives the same solution as geometric multigrid."""
import functools

import numpy as np
import pytest

import crk
import solvers
from solvers.functionals import error_norms
from solvers.reaction import boundary_flux

LAM, MU = 1.5, 1.0


@functools.lru_cache(maxsize=None)
def linear_stress(dim):
    import jax.numpy as jnp
    from crk.cr.jax import point_map

    @point_map(((-1, dim, dim), (), ()), (-1, dim, dim))
    def sigma(G, lam, mu):
        eps = 0.5 * (G + jnp.swapaxes(G, 1, 2))
        tr = jnp.trace(eps, axis1=1, axis2=2)
        return lam * tr[:, None, None] * jnp.eye(dim) + 2.0 * mu * eps
    return sigma


@functools.lru_cache(maxsize=None)
def neo_hookean(dim):
    import jax.numpy as jnp
    from crk.cr.jax import point_map

    @point_map(((-1, dim, dim), (), ()), (-1,))
    def energy(G, lam, mu):
        F = jnp.eye(dim) + G
        C = jnp.einsum("nki,nkj->nij", F, F)
        J = jnp.linalg.det(F)
        logJ = jnp.log(J)
        return 0.5 * mu * (jnp.trace(C, axis1=1, axis2=2) - dim) - mu * logJ + \
            0.5 * lam * logJ ** 2
    return energy


def _point_stress(kind, dim):
    """Per-point stress of ∇u (m, d), in jax.numpy, for the manufactured source."""
    import jax
    import jax.numpy as jnp
    if kind == "linear":
        def stress(u, G):
            eps = 0.5 * (G + G.T)
            return LAM * jnp.trace(eps) * jnp.eye(dim) + 2 * MU * eps
        return stress

    def W(G):
        F = jnp.eye(dim) + G
        J = jnp.linalg.det(F)
        return 0.5 * MU * (jnp.trace(F.T @ F) - dim) - MU * jnp.log(J) + \
            0.5 * LAM * jnp.log(J) ** 2
    return lambda u, G: jax.grad(W)(G)


def _exact(dim):
    import jax.numpy as jnp

    def u(x):
        s = jnp.prod(jnp.sin(jnp.pi * x))
        return 0.05 * jnp.array([s + x[1 % dim] * x[0], jnp.cos(x[0]) * x[-1] - s,
                                 s * x[0] + 0.1][:dim])
    return u


@pytest.mark.mpi
@pytest.mark.parametrize("dim,kind,sizes", [(2, "linear", (16, 32)), (3, "linear", (4, 8)),
                                            (2, "neo-hookean", (16, 32))])
def test_manufactured_elasticity(PETSc, manufactured, dim, kind, sizes):
    source, functions = manufactured
    exact = _exact(dim)
    f = source(_point_stress(kind, dim), exact, dim)
    value, gradient = functions(exact)
    law = linear_stress(dim) if kind == "linear" else neo_hookean(dim)
    errors = []
    for n in sizes:
        with solvers.BoxMesh((n,) * dim) as mesh, solvers.NonlinearProblem(
                mesh, law, state=("grad_u",), energy=kind != "linear", symmetric=True,
                dirichlet=[solvers.DirichletBC("boundary", value)]) as problem:
            u = problem.solve(LAM, MU, f=f)
            assert u.shape == (mesh.n_owned, dim)
            errors.append(error_norms(mesh, u, value, gradient))
    l2 = np.array([e[0] for e in errors])
    h1 = np.array([e[1] for e in errors])
    assert np.log2(l2[-2] / l2[-1]) == pytest.approx(2.0, abs=0.15), l2
    assert np.log2(h1[-2] / h1[-1]) == pytest.approx(1.0, abs=0.1), h1


def _stretched_block(mesh, stretch, mu, prefix):
    bcs = [solvers.DirichletBC("xmin", 0.0), solvers.DirichletBC("xmax", stretch, components=0)]
    problem = solvers.NonlinearProblem(mesh, neo_hookean(3), state=("grad_u",), energy=True,
                                       dirichlet=bcs, options_prefix=prefix)
    return problem


@pytest.mark.mpi
def test_neo_hookean_block_stretched_ten_percent(PETSc):
    with crk.Tape() as tape, solvers.BoxMesh((6, 4, 4), upper=(1.0, 0.5, 0.5)) as mesh:
        stretch, mu = crk.AdjFloat(0.1), crk.AdjFloat(MU)
        with _stretched_block(mesh, stretch, mu, "nh_") as problem:
            u = problem.solve(LAM, mu, load_steps=2)
            right = boundary_flux(problem, u, "xmax", LAM, mu)
            left = boundary_flux(problem, u, "xmin", LAM, mu)
            assert right[0] > 0.0                                    # tension
            assert float(left[0] + right[0]) == pytest.approx(0.0, abs=1e-9 * float(right[0]))
            # lateral contraction: the free faces move inwards
            ux = mesh.gather(u.value)
            x = mesh.gather(mesh.coordinates())
            mid = np.isclose(x[:, 0], 0.5) & np.isclose(x[:, 1], 0.5)
            assert np.all(ux[mid, 1] < 0.0)
            J = right[0]
            rf = crk.ReducedFunctional(J, [crk.Control(stretch), crk.Control(mu)], tape=tape)
            rates = crk.taylor_to_dict(rf, [0.1, MU], [0.02, 0.1])
            assert min(rates["R1"]["Rate"]) > 1.9, rates
            assert min(rates["R2"]["Rate"]) > 2.9, rates


@pytest.mark.mpi
def test_gamg_with_near_null_space(PETSc):
    db = PETSc.Options()
    db["gamg_pc_type"] = "gamg"
    try:
        with solvers.BoxMesh((8, 4, 4), upper=(1.0, 0.5, 0.5)) as mesh:
            solutions = []
            for prefix in ("gamg_", "mg_"):
                with _stretched_block(mesh, 0.05, MU, prefix) as problem:
                    u = problem.solve(LAM, MU, load_steps=1)
                    if prefix == "gamg_":
                        assert problem.ksp.getPC().getType() == "gamg"
                        assert problem.J.getNearNullSpace() is not None
                    solutions.append(mesh.gather(u.value))
            assert np.max(np.abs(solutions[0] - solutions[1])) < 1e-8
    finally:
        del db["gamg_pc_type"]
