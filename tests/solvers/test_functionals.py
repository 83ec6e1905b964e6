"""Functionals as recorded values: integrals at quadrature points, the mass-weighted misfit,
Tikhonov terms, point sensors (each read by one rank, replicated results), boundary fluxes,
Riesz maps; values checked against exact integrals and derivatives by Taylor tests."""
import numpy as np
import pytest

import crk
import solvers
from crk.parallel import CollectiveError
from solvers import functionals as fn
from solvers.reaction import boundary_flux
from solvers.riesz import RieszMap
from solvers.sensors import Sensors, point_values


@pytest.mark.mpi
def test_integrals_are_exact_for_q1_fields(PETSc, assert_replicated):
    with solvers.BoxMesh((6, 5), upper=(2.0, 1.0)) as mesh:
        u = mesh.field(lambda x: x[:, 0] * x[:, 1] + 2 * x[:, 1])        # bilinear: exact in Q1
        total = fn.integral(mesh, fn.at_points(u, mesh))
        assert float(total) == pytest.approx(2.0 * 0.5 + 2 * 2.0 * 0.5, rel=1e-13)
        assert_replicated(total)
        # ∫ |∇u|² = ∫ y² + (x + 2)² over [0,2]x[0,1]
        expected = 2.0 / 3.0 + (4.0 ** 3 - 2.0 ** 3) / 3.0
        assert float(fn.h1_seminorm_squared(mesh, u)) == pytest.approx(expected, rel=1e-13)
        # the misfit is the mass-matrix norm, not a nodal sum
        d = mesh.field(lambda x: np.cos(x[:, 0]))
        with RieszMap(mesh, "L2") as mass:
            diff = u.value - d.value
            assert float(fn.l2_misfit(mesh, u, d)) == pytest.approx(mass.inner(diff, diff),
                                                                    rel=1e-12)


@pytest.mark.mpi
def test_functional_taylor(PETSc):
    with crk.Tape() as tape, solvers.BoxMesh((7, 6)) as mesh:
        m = mesh.field(lambda x: np.sin(3 * x[:, 0]) + x[:, 1])
        sensors = np.array([[0.1, 0.2], [0.5, 0.5], [0.99, 0.33], [1.0, 1.0], [0.0, 0.7]])
        J = (fn.l2_misfit(mesh, m * m, lambda x: x[:, 0]) + 0.1 * fn.h1_seminorm_squared(mesh, m)
             + 0.3 * fn.l2_norm_squared(mesh, m) + crk.sum(point_values(mesh, m, sensors) ** 3))
        rf = crk.ReducedFunctional(J, crk.Control(m), tape=tape)
        h = mesh.field(lambda x: np.cos(5 * x[:, 1])).value
        rates = crk.taylor_to_dict(rf, m.value, h)
        assert min(rates["R1"]["Rate"]) > 1.9, rates
        assert min(rates["R2"]["Rate"]) > 2.9, rates


@pytest.mark.mpi
def test_sensors_each_read_by_one_rank(PETSc, comm, assert_replicated):
    with solvers.BoxMesh((5, 4, 3)) as mesh:
        rng = np.random.default_rng(3)
        points = np.concatenate([rng.random((20, 3)), np.eye(3), np.ones((1, 3)),
                                 np.array([[0.4, 0.5, 1.0 / 3.0]])])      # on element faces
        sensors = Sensors(mesh, points)
        owners = comm.allreduce(sensors.mine.astype(int))
        assert np.all(owners == 1)
        u = mesh.field(lambda x: np.stack([x[:, 0] * x[:, 1] * x[:, 2] + x[:, 1],
                                           1 - x[:, 0]], axis=1))        # trilinear
        values = point_values(mesh, u, sensors)
        assert_replicated(values)
        exact = np.stack([points[:, 0] * points[:, 1] * points[:, 2] + points[:, 1],
                          1 - points[:, 0]], axis=1)
        assert np.allclose(values.value, exact, rtol=1e-13, atol=1e-14)
        bad = points.copy()
        bad[3, 1] = 1.5 if comm.rank == comm.size - 1 else 0.5
        with pytest.raises((ValueError, CollectiveError)):
            with crk.parallel.collective_section(comm=comm):
                Sensors(mesh, bad)


@pytest.mark.mpi
def test_riesz_maps(PETSc):
    with solvers.BoxMesh((8, 8)) as mesh, crk.Tape() as tape:
        m = mesh.field(lambda x: np.sin(np.pi * x[:, 0]) + x[:, 1] ** 2)
        J = fn.l2_norm_squared(mesh, m)
        rf = crk.ReducedFunctional(J, crk.Control(m), tape=tape)
        with RieszMap(mesh, "L2") as l2, RieszMap(mesh, "H1") as h1:
            g = rf.derivative(riesz_map=l2)              # the L2 gradient of ∫ m² is 2 m
            assert isinstance(g, crk.ndarray) and g.distributed
            assert np.allclose(g.value, 2 * m.value, rtol=1e-9, atol=1e-10)
            d = rf.derivative()
            gh = h1(d)                                   # (M + K) gh = d
            expected = mesh.comm.allreduce(float(np.vdot(d.value, m.value)))
            assert h1.inner(gh, m) == pytest.approx(expected, rel=1e-9)


@pytest.mark.mpi
def test_boundary_flux_balances_the_source(PETSc, plaplace):
    db = PETSc.Options()
    db["flux_snes_rtol"], db["flux_ksp_rtol"] = 1e-14, 1e-13
    try:
        with crk.Tape() as tape, solvers.BoxMesh((10, 10)) as mesh, solvers.NonlinearProblem(
                mesh, plaplace(2), state=("grad_u",), symmetric=True, options_prefix="flux_",
                dirichlet=[solvers.DirichletBC("boundary", 0.0)]) as problem:
            p, f = crk.AdjFloat(3.0), crk.AdjFloat(1.0)
            u = problem.solve(p, f=f)
            fluxes = [boundary_flux(problem, u, face, p, f=f)
                      for face in ("xmin", "xmax", "ymin", "ymax")]
            total = boundary_flux(problem, u, "boundary", p, f=f)
            assert float(total) == pytest.approx(-1.0, rel=1e-9)      # ∫ q·n = −∫ f
            assert float(fluxes[0]) == pytest.approx(float(fluxes[1]), rel=1e-9)  # symmetry
            assert -0.3 < float(fluxes[1]) < -0.25                     # corners count twice
            rf = crk.ReducedFunctional(fluxes[1] * fluxes[2] + 0.01 * crk.sum(u) ** 2,
                                       [crk.Control(p), crk.Control(f)], tape=tape)
            rates = crk.taylor_to_dict(rf, [3.0, 1.0], [0.3, 0.2])
            assert min(rates["R1"]["Rate"]) > 1.9, rates
            assert min(rates["R2"]["Rate"]) > 2.9, rates
    finally:
        del db["flux_snes_rtol"], db["flux_ksp_rtol"]
