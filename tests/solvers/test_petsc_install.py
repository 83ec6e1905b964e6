"""The PETSc install works in parallel: a DMDA Laplacian solved with KSP, a
bound-constrained quadratic minimised with TAO, all on COMM_WORLD.

Written in terms of the communicator size: the same tests run serially and under
`mpirun -n 2` / `-n 3` (global problem sizes are fixed, PETSc splits them).
"""

import contextlib
import subprocess
import sys

import numpy as np
import pytest

NX, NY = 12, 10  # DMDA grid; unequal sizes catch transposed indexing


@pytest.fixture(scope="module")
def PETSc():
    pytest.importorskip("petsc4py")
    from solvers.petsc import import_petsc

    return import_petsc()


def on_every_rank(comm, value):
    """The list of `value` as each rank has it (to check that all ranks agree)."""
    return comm.tompi4py().allgather(value)


def source(i, j):
    """Right-hand side at grid node (i, j); not symmetric, so ordering mistakes show."""
    return 1.0 + 0.5 * np.sin(i) + 0.25 * j


def assemble_laplacian(PETSc, da):
    """The 5-point -Laplacian (scaled by h^2) on the nodes of `da`, zero Dirichlet outside."""
    A = da.createMat()
    (xs, xe), (ys, ye) = da.getRanges()
    row, col = PETSc.Mat.Stencil(), PETSc.Mat.Stencil()
    for j in range(ys, ye):
        for i in range(xs, xe):
            row.index = (i, j)
            col.index = (i, j)
            A.setValueStencil(row, col, 4.0)
            for ni, nj in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                if 0 <= ni < NX and 0 <= nj < NY:
                    col.index = (ni, nj)
                    A.setValueStencil(row, col, -1.0)
    A.assemble()
    return A


def reference_solution():
    """The same system solved with scipy on every rank, in natural (i fastest) order."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    def second_difference(n):
        return sp.diags([-np.ones(n - 1), 2.0 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])

    A = sp.kron(sp.identity(NY), second_difference(NX)) + sp.kron(second_difference(NY), sp.identity(NX))
    i, j = np.meshgrid(np.arange(NX), np.arange(NY), indexing="xy")
    return spla.spsolve(A.tocsc(), source(i, j).ravel())


@pytest.mark.mpi
def test_dmda_laplacian_ksp(PETSc):
    comm = PETSc.COMM_WORLD
    with contextlib.ExitStack() as cleanup:
        da = PETSc.DMDA().create(
            dim=2, dof=1, sizes=(NX, NY), stencil_width=1,
            stencil_type=PETSc.DMDA.StencilType.STAR, comm=comm,
        )
        cleanup.callback(da.destroy)
        A = assemble_laplacian(PETSc, da)
        cleanup.callback(A.destroy)
        x, b, r = da.createGlobalVec(), da.createGlobalVec(), da.createGlobalVec()
        for vec in (x, b, r):
            cleanup.callback(vec.destroy)

        # A rank's piece of a DMDA global Vec is its box of nodes with i running fastest,
        # i.e. Fortran order of an [i, j] array. (Not da.getVecArray: with petsc4py
        # 3.26.1 it sets ndarray strides, which NumPy 2.4 deprecates.)
        (xs, xe), (ys, ye) = da.getRanges()
        i, j = np.meshgrid(np.arange(xs, xe), np.arange(ys, ye), indexing="ij")
        b.setArray(source(i, j).ravel(order="F"))

        ksp = PETSc.KSP().create(comm=comm)
        cleanup.callback(ksp.destroy)
        ksp.setOperators(A)
        ksp.setType(PETSc.KSP.Type.CG)
        ksp.getPC().setType(PETSc.PC.Type.JACOBI)
        ksp.setTolerances(rtol=1e-12, atol=1e-14, max_it=1000)
        ksp.solve(b, x)
        assert ksp.getConvergedReason() > 0, ksp.getConvergedReason()

        A.mult(x, r)
        r.aypx(-1.0, b)  # r = b - A x
        assert r.norm() <= 1e-10 * b.norm()

        # Global reductions: the same on every rank, and equal to a serial solve.
        reference = reference_solution()
        total = x.sum()
        assert len(set(on_every_rank(comm, total))) == 1
        assert total == pytest.approx(reference.sum(), rel=1e-10)
        x_local = x.getArray(readonly=True).reshape(i.shape, order="F")
        assert np.allclose(x_local, reference.reshape(NY, NX).T[xs:xe, ys:ye], rtol=1e-9)


@pytest.mark.mpi
def test_tao_blmvm_bounded_quadratic(PETSc):
    """min 0.5 sum_k w_k (x_k - c_k)^2 subject to -1 <= x <= 1: the minimiser is clip(c)."""
    comm = PETSc.COMM_WORLD
    n = 11
    with contextlib.ExitStack() as cleanup:
        def vector(values_of_index):
            vec = PETSc.Vec().createMPI(n, comm=comm)
            cleanup.callback(vec.destroy)
            lo, hi = vec.getOwnershipRange()
            vec.setArray(values_of_index(np.arange(lo, hi, dtype=float)))
            return vec

        c = vector(lambda k: (k - 5.0) / 3.0)  # from -5/3 to 5/3: some bounds are active
        w = vector(lambda k: 1.0 + k)  # uneven curvature, so the quasi-Newton steps matter
        x = vector(np.zeros_like)
        lower = vector(lambda k: -np.ones_like(k))
        upper = vector(np.ones_like)
        g, d = x.duplicate(), x.duplicate()
        cleanup.callback(g.destroy)
        cleanup.callback(d.destroy)

        def objective_and_gradient(tao, x, g):
            x.copy(d)
            d.axpy(-1.0, c)  # d = x - c
            g.pointwiseMult(w, d)  # g = w * (x - c)
            return 0.5 * d.dot(g)

        tao = PETSc.TAO().create(comm=comm)
        cleanup.callback(tao.destroy)
        tao.setType(PETSc.TAO.Type.BLMVM)
        tao.setObjectiveGradient(objective_and_gradient, g)
        tao.setVariableBounds(lower, upper)
        tao.setSolution(x)
        tao.setTolerances(gatol=1e-10, grtol=0.0, gttol=0.0)
        tao.setMaximumIterations(200)
        tao.solve()
        assert tao.getConvergedReason() > 0, tao.getConvergedReason()

        expected = np.clip(c.getArray(), -1.0, 1.0)
        local_error = float(np.max(np.abs(x.getArray() - expected), initial=0.0))
        assert max(on_every_rank(comm, local_error)) < 1e-7
        assert len(set(on_every_rank(comm, tao.getObjectiveValue()))) == 1


def test_importing_solvers_initialises_nothing():
    code = (
        "import sys, solvers, solvers.petsc\n"
        "loaded = [m for m in ('petsc4py', 'mpi4py') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_mismatch_is_explained(PETSc, monkeypatch):
    import petsc4py

    from solvers.petsc import import_petsc

    monkeypatch.setattr(petsc4py, "__version__", "3.1.0")
    with pytest.raises(ImportError, match=r"petsc4py 3\.1\.0 .* PETSc library \d+\.\d+") as info:
        import_petsc()
    assert "pip install --no-build-isolation" in str(info.value)
    assert "conda install -c conda-forge" in str(info.value)
