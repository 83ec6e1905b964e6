"""Recover the exponent p and the flux scale k of a p-Laplacian from noisy observations of u,
with scipy's L-BFGS-B (in lock-step on every rank) and with PETSc TAO (bqnls).

    mpirun -n 2 python examples/fit_p_laplacian.py [--n 32] [--quick] [--output DIR] [-plap_snes_monitor ...]

The problem — the flux q = k (ε² + |∇u|²)^((p−2)/2) ∇u as a JAX point map, Newton solves on the
unit square under two loadings, noisy nodal observations, the relative L2 misfit — is
:class:`crk.fit.problems.p_laplacian.PLaplacianFit`, the same that ``crk-fit p_laplacian`` runs.
Prints what each optimiser recovered next to the truth and writes results.json, history.csv,
PNG plots and VTK fields to ``DIR/scipy`` and ``DIR/tao`` (default examples/output/
fit_p_laplacian). Exits non-zero unless both fits converge with p within 1% of the truth.
Every rank count gives the same numbers (to the solvers' tolerances).
"""
from crk.fit.problems.p_laplacian import PLaplacianFit
from crk.fit.script import run_example


def passed(compared, result):
    return result.success and compared["p"]["relative_error"] < 0.01


if __name__ == "__main__":
    run_example(PLaplacianFit, "fit_p_laplacian", optimizers=("scipy", "tao"), passed=passed)
