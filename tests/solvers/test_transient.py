"""Time steps: the heat equation decays as it should (implicit Euler first order, θ = 1/2
second order), and gradients with respect to the initial state and a parameter pass Taylor
tests under Revolve checkpointing, and store-all gives the same gradient and Hessian action."""
import functools

import numpy as np
import pytest

import crk
import solvers
from solvers.functionals import l2_misfit


@functools.lru_cache(maxsize=None)
def _nonlinear(dim):
    from crk.cr.jax import point_map

    @point_map(((-1,), (-1, dim), ()), (-1, dim))
    def flux(u, g, kappa):
        return (kappa * (1.0 + 0.5 * u * u))[:, None] * g
    return flux


@pytest.mark.mpi
@pytest.mark.parametrize("theta,order", [(1.0, 1.0), (0.5, 2.0)])
def test_heat_equation_time_order(PETSc, laplacian, theta, order):
    """u_t = Δu, u0 = sin(πx) sin(πy): u(T) = exp(−2π² T) u0 (up to the space error, which
    cancels in the differences of successive dt)."""
    T = 0.05
    with solvers.BoxMesh((16, 16)) as mesh:
        u0 = mesh.field(lambda x: np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]))
        finals = []
        for steps in (4, 8, 16):
            with solvers.TransientProblem(mesh, laplacian(2), dt=T / steps, theta=theta,
                                          state=("grad_u",), symmetric=True,
                                          dirichlet=[solvers.DirichletBC("boundary", 0.0)]) \
                    as problem:
                u = u0
                for _ in range(steps):
                    u = problem.step(u, 1.0)
                finals.append(mesh.gather(u.value))
        d1 = np.max(np.abs(finals[0] - finals[1]))
        d2 = np.max(np.abs(finals[1] - finals[2]))
        assert np.log2(d1 / d2) == pytest.approx(order, abs=0.25)
        decay = np.exp(-2 * np.pi ** 2 * T)
        centre = finals[-1][(mesh.total_nodes - 1) // 2]
        assert centre == pytest.approx(decay, rel=0.05)


def _record(mesh, tape, theta, steps):
    kappa = crk.AdjFloat(0.7)
    u0 = mesh.field(lambda x: np.sin(np.pi * x[:, 0]) * (1 + x[:, 1]))
    with solvers.TransientProblem(mesh, _nonlinear(mesh.dim), dt=0.02, theta=theta,
                                  dirichlet=[solvers.DirichletBC("left", 0.0)],
                                  options_prefix="trans_") as problem:
        u = solvers.transient.run(problem, u0, steps, kappa, f=1.0, tape=tape)
        J = l2_misfit(mesh, u, lambda x: 0.3 * x[:, 0])
        yield J, kappa, u0, problem


@pytest.mark.mpi
@pytest.mark.parametrize("theta", [1.0, 0.5])
def test_taylor_initial_state_and_parameter(PETSc, theta):
    """Taylor tests under Revolve; store-all gives the same gradient and Hessian action."""
    steps = 4
    results = {}
    for schedule in (crk.checkpointing.Revolve(n_steps=steps, snapshots=2), None):
        with solvers.BoxMesh((10, 8)) as mesh, crk.Tape(checkpointing=schedule) as tape:
            for J, kappa, u0, problem in _record(mesh, tape, theta, steps):
                rf = crk.ReducedFunctional(J, [crk.Control(u0), crk.Control(kappa)], tape=tape)
                x = mesh.coordinates()
                h = [0.3 * np.cos(2 * x[:, 1]), 0.2]
                if schedule is not None:
                    rates = crk.taylor_to_dict(rf, [u0.value, 0.7], h)
                    assert min(rates["R1"]["Rate"]) > 1.9, rates
                    assert min(rates["R2"]["Rate"]) > 2.9, rates
                rf([u0.value, 0.7])
                du0, dk = rf.derivative()
                hu0, hk = rf.hessian(h)
                results[schedule is None] = [mesh.gather(du0.value), float(dk),
                                             mesh.gather(hu0.value), float(hk)]
    for name, revolve, store_all in zip(("dJ/du0", "dJ/dkappa", "H du0", "H dkappa"),
                                        results[False], results[True]):
        # the replays' Newton solves start from other guesses: equal to the solver tolerance
        error = np.max(np.abs(store_all - revolve)) / np.max(np.abs(revolve))
        assert error <= 1e-10, (name, error)
