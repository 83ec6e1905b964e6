"""The Newton solve: convergence of the p-Laplacian from a zero guess (quadratic at the end),
the options database (defaults first, the command line wins, nothing left unused), failures
raised on every rank, argument errors, and flat memory over repeated solves and gradients."""
import numpy as np
import pytest

import crk
import solvers
from crk.parallel import CollectiveError


def _problem(mesh, plaplace, prefix, **kwargs):
    return solvers.NonlinearProblem(mesh, plaplace(mesh.dim), symmetric=True,
                                    dirichlet=[solvers.DirichletBC("boundary", 0.0)],
                                    options_prefix=prefix, **kwargs)


@pytest.mark.mpi
@pytest.mark.parametrize("p", [1.5, 2.5, 3.0, 4.0])
def test_plaplace_converges_from_zero(PETSc, plaplace, p):
    with solvers.BoxMesh((32, 32)) as mesh, _problem(mesh, plaplace, "pconv_") as problem:
        u = problem.solve(p, f=1.0)
        assert problem.snes.getConvergedReason() > 0
        assert 0.0 < float(crk.sum(u)) < mesh.total_nodes


@pytest.mark.mpi
def test_newton_converges_quadratically(PETSc, plaplace):
    db = PETSc.Options()
    db["quad_snes_ksp_ew"] = False
    db["quad_ksp_rtol"] = 1e-14
    db["quad_snes_rtol"] = 1e-14
    try:
        with solvers.BoxMesh((32, 32)) as mesh, _problem(mesh, plaplace, "quad_") as problem:
            problem.solve(3.0, f=1.0)
            norms, _ = problem.snes.getConvergenceHistory()
    finally:
        for k in ("quad_snes_ksp_ew", "quad_ksp_rtol", "quad_snes_rtol"):
            del db[k]
    r = np.asarray(norms) / norms[0]
    # the last steps: r_{k+1} <= C r_k^2 (quadratic), while r_k is still above round-off
    tail = [(a, b) for a, b in zip(r[:-1], r[1:]) if a < 1e-2 and b > 1e-14]
    assert len(tail) >= 1, r
    assert all(b <= 10.0 * a * a for a, b in tail), r


@pytest.mark.mpi
def test_options_defaults_and_command_line(PETSc, laplacian):
    db = PETSc.Options()
    db["opt_ksp_type"] = "gmres"
    db["opt_ksp_gmres_restart"] = 40
    db["opt_snes_linesearch_type"] = "basic"
    try:
        with solvers.BoxMesh((16, 16)) as mesh, solvers.NonlinearProblem(
                mesh, laplacian(2), state=("grad_u",), symmetric=True, options_prefix="opt_",
                dirichlet=[solvers.DirichletBC("boundary", 0.0)]) as problem:
            assert problem.ksp.getType() == "gmres"              # the command line won
            expected = problem.default_options()["pc_type"]       # a crk default
            assert problem.ksp.getPC().getType() == expected == \
                ("mg" if problem.multigrid_levels() >= 3 else "gamg")
            assert problem.snes.getLineSearch().getType() == "basic"
            problem.solve(1.0, f=1.0)
            unused = [k for k in ("opt_ksp_type", "opt_ksp_gmres_restart",
                                  "opt_snes_linesearch_type") if not db.used(k)]
            assert not unused
        # crk's defaults are gone from the database (they never show as unused options)
        left = [k for k in db.getAll() if k.startswith("opt_") and
                k not in ("opt_ksp_type", "opt_ksp_gmres_restart", "opt_snes_linesearch_type")]
        assert not left, left
    finally:
        for k in ("opt_ksp_type", "opt_ksp_gmres_restart", "opt_snes_linesearch_type"):
            del db[k]


@pytest.mark.mpi
@pytest.mark.parametrize("n, levels", [(64, 3), (128, 3), (256, 4)])
def test_multigrid_defaults_give_a_symmetric_v_cycle(PETSc, plaplace, comm, n, levels):
    """Geometric multigrid down to about a thousand unknowns (at least 3 levels), smoothed by
    one Richardson step of (processor-local) SSOR: the V-cycle is a symmetric operator (CG
    needs that) on every rank count."""
    with solvers.BoxMesh((n, n), comm=comm) as mesh, \
            _problem(mesh, plaplace, "mgdef_") as problem:
        pc = problem.ksp.getPC()
        assert pc.getType() == "mg" and pc.getMGLevels() == levels
        problem.solve(3.0, f=1.0)
        assert problem.snes.getConvergedReason() > 0
        # the same random vectors on every rank count: global arrays cut to the owned part
        rng = np.random.default_rng(7)
        x_all, y_all = rng.standard_normal((2, mesh.total_nodes))
        x, y, px, py = (problem.J.createVecLeft() for _ in range(4))
        lo, hi = x.getOwnershipRange()
        x.setArray(x_all[lo:hi])
        y.setArray(y_all[lo:hi])
        pc.apply(x, px)
        pc.apply(y, py)
        a, b = y.dot(px), x.dot(py)
        assert abs(a - b) <= 1e-10 * abs(a), (a, b)
        assert x.dot(px) > 0                        # and positive definite along x
        for level in range(1, levels):
            ksp = pc.getMGSmoother(level)
            assert ksp.getType() == "richardson" and ksp.getPC().getType() == "sor"
            assert ksp.getTolerances()[3] == 1


@pytest.mark.mpi
def test_multigrid_chosen_on_a_small_grid_keeps_the_supported_levels(PETSc, plaplace, comm):
    """``-pc_type mg`` chosen by the user on a grid too small for crk's default of at least 3
    levels: crk asks for no more levels than the DMDA supports on this rank count."""
    db = PETSc.Options()
    db["mgsmall_pc_type"] = "mg"
    try:
        with solvers.BoxMesh((4, 4), comm=comm) as mesh, \
                _problem(mesh, plaplace, "mgsmall_") as problem:
            levels = problem.multigrid_levels()
            assert levels < 3
            pc = problem.ksp.getPC()
            assert pc.getType() == "mg" and pc.getMGLevels() == levels
            problem.solve(3.0, f=1.0)
            assert problem.snes.getConvergedReason() > 0
    finally:
        del db["mgsmall_pc_type"]


@pytest.mark.mpi
@pytest.mark.parametrize("linesearch", ["bt", "l2"])
def test_a_rank_owning_only_constrained_nodes_keeps_up(PETSc, plaplace, comm, linesearch):
    """The last rank owns only the x = 1 column of nodes, all under Dirichlet data: with exact
    linear solves its owned values never move, yet it must build every Jacobian with the others
    (an ``l2`` line search builds each one apart from the residual). Solution and gradient
    equal the even split's."""
    from solvers.functionals import l2_misfit
    n, size = 16, comm.size
    xs = (n + 1,) if size == 1 else \
        tuple(int(c) for c in np.diff(np.linspace(0, n, size).round())) + (1,)
    db = PETSc.Options()
    options = {"snes_linesearch_type": linesearch, "ksp_type": "preonly",
               "pc_type": "redundant"}
    results = []
    try:
        for ownership, prefix in (((xs, (n + 1,)), "onlybc_"), (None, "evensplit_")):
            for key, value in options.items():
                db[prefix + key] = value
            with solvers.BoxMesh((n, n), comm=comm, ownership=ownership) as mesh, \
                    _problem(mesh, plaplace, prefix) as problem:
                tape = crk.Tape()
                with tape:
                    p = crk.AdjFloat(3.0)
                    u = problem.solve(p, f=1.0)
                    J = l2_misfit(mesh, u, 0.0)
                rf = crk.ReducedFunctional(J, crk.Control(p), tape=tape)
                assert problem.snes.getConvergedReason() > 0
                results.append((float(J), float(rf.derivative()), mesh.gather(u.value)))
    finally:
        for prefix in ("onlybc_", "evensplit_"):
            for key in options:
                if db.hasName(prefix + key):
                    del db[prefix + key]
    (J1, g1, u1), (J2, g2, u2) = results
    assert abs(J1 - J2) <= 1e-10 * abs(J2) and abs(g1 - g2) <= 1e-10 * abs(g2)
    assert np.abs(u1 - u2).max() <= 1e-10 * np.abs(u2).max(), np.abs(u1 - u2).max()


@pytest.mark.mpi
def test_diverging_solve_raises_on_every_rank(PETSc, plaplace):
    db = PETSc.Options()
    db["div_snes_max_it"] = 2
    try:
        with solvers.BoxMesh((16, 16)) as mesh, _problem(mesh, plaplace, "div_") as problem:
            with pytest.raises(solvers.ConvergenceError, match="DIVERGED_MAX_IT") as info:
                problem.solve(4.0, f=1.0)
            assert info.value.solve == "forward Newton"
            assert len(info.value.history) == 3 and info.value.history[0] > 0
            # the problem still works after a failure
            db["div_snes_max_it"] = 50
    finally:
        del db["div_snes_max_it"]


@pytest.mark.mpi
def test_nan_law_on_some_ranks_raises_everywhere(PETSc, comm):
    import jax.numpy as jnp
    from crk.cr.jax import point_map

    @point_map(((-1, 2), (-1,)), (-1, 2))
    def bad(g, x):
        return jnp.sqrt(0.75 - x)[:, None] * g          # NaN where x > 0.75

    with solvers.BoxMesh((16, 16)) as mesh, solvers.NonlinearProblem(
            mesh, bad, state=("grad_u",), dirichlet=[solvers.DirichletBC("boundary", 0.0)],
            options_prefix="nan_") as problem:
        x = mesh.field(lambda x: x[:, 0])
        with pytest.raises((FloatingPointError, CollectiveError)) as info:
            problem.solve(x, f=1.0)
        text = str(info.value)
        assert "NaN or infinite" in text
        # the ranks that own elements with x > 0.75 raised the original error
        owns_bad = mesh.element_ranges[0][1] * mesh.spacing[0] > 0.75
        assert isinstance(info.value, FloatingPointError) == owns_bad


@pytest.mark.mpi
def test_adjoint_failure_raises_on_every_rank(PETSc, plaplace):
    with crk.Tape() as tape, solvers.BoxMesh((16, 16)) as mesh, \
            _problem(mesh, plaplace, "adjfail_") as problem:
        p = crk.AdjFloat(3.0)
        u = problem.solve(p, f=1.0)
        J = crk.sum(u * u)
        rf = crk.ReducedFunctional(J, crk.Control(p), tape=tape)
        problem.adjoint_rtol = 1e-30
        problem.linear_max_it = 3
        with pytest.raises(solvers.ConvergenceError, match="adjoint solve did not converge: "
                                                           "DIVERGED_MAX_IT"):
            rf.derivative()
        problem.adjoint_rtol, problem.linear_max_it = 1e-12, 1000
        assert np.isfinite(float(rf.derivative()))


@pytest.mark.mpi
def test_argument_errors(PETSc, plaplace, comm):
    with solvers.BoxMesh((8, 8)) as mesh, _problem(mesh, plaplace, "args_") as problem:
        with pytest.raises(ValueError, match=r"parameter of shape \(\) shared by all points"):
            problem.solve(np.ones(3), f=1.0)
        with pytest.raises(ValueError, match="argument 'f': expected a float, 1 floats"):
            problem.solve(3.0, f=np.ones((2, 2)))
        with pytest.raises(TypeError, match="expected a crk point map"):
            solvers.NonlinearProblem(mesh, lambda g: g)
        with pytest.raises(ValueError, match="argument 'state' must be"):
            solvers.NonlinearProblem(mesh, plaplace(2), state=("u",))
        # a bad value on one rank only raises on every rank
        bad = 3.0 if comm.rank != comm.size - 1 else np.ones(2)
        with pytest.raises((ValueError, CollectiveError)):
            problem.solve(bad, f=1.0)


@pytest.mark.mpi
def test_memory_flat_over_repeated_solves_and_gradients(PETSc, plaplace, comm):
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2 ** 20      # MiB

    with crk.Tape() as tape, solvers.BoxMesh((12, 12)) as mesh, \
            _problem(mesh, plaplace, "mem_") as problem:
        p = crk.AdjFloat(3.0)
        u = problem.solve(p, f=1.0)
        J = crk.sum(u * u)
        rf = crk.ReducedFunctional(J, crk.Control(p), tape=tape)
        samples = []
        for k in range(100):
            rf(3.0 + 0.001 * (k % 7))
            rf.derivative()
            if k in (19, 99):
                samples.append(rss())
    growth = comm.allreduce(samples[1] - samples[0], op=__import__("mpi4py").MPI.MAX)
    assert growth < 3.0, f"RSS grew by {growth:.2f} MiB over 80 solve + gradient calls"


def test_command_line_options_and_options_left(PETSc, tmp_path):
    """A script passing its command line to import_petsc: the user's options reach the solver,
    and PETSc's -options_left report finds none unused (crk's defaults included)."""
    import subprocess
    import sys
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from solvers.petsc import import_petsc\n"
        "PETSc = import_petsc(argv=sys.argv)\n"
        "import solvers\n"
        "from crk.cr.jax import point_map\n"
        "@point_map(((-1, 2), ()), (-1, 2))\n"
        "def flux(g, k):\n"
        "    return k * g\n"
        "with solvers.BoxMesh((16, 16)) as mesh, solvers.NonlinearProblem(\n"
        "        mesh, flux, symmetric=True, options_prefix='cli_',\n"
        "        dirichlet=[solvers.DirichletBC('boundary', 0.0)]) as problem:\n"
        "    problem.solve(1.0, f=1.0)\n"
        "    print('KSP', problem.ksp.getType(), problem.ksp.getPC().getType())\n")
    out = subprocess.run([sys.executable, str(script), "-cli_ksp_type", "minres",
                          "-cli_pc_type", "gamg", "-cli_snes_max_it", "20", "-options_left"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "KSP minres gamg" in out.stdout
    assert "There are no unused options" in out.stdout + out.stderr, out.stdout[-2000:]
