"""Learn a neural-network constitutive relation q = μ(|∇u|²; w) ∇u (a small JAX MLP of the
invariant, so the law is frame-indifferent) from observations of u under several loadings.

    mpirun -n 2 python examples/fit_network_cr.py [--n 16] [--quick] [--output DIR] [PETSc options]

The problem is :class:`crk.fit.problems.network_cr.NetworkCRFit` (also ``crk-fit network_cr``):
the MLP's weights are one replicated control, fitted by L-BFGS-B in lock-step on every rank;
every loading is a Newton solve whose per-point Jacobians come from the network by JAX. Prints
the learned μ next to the true one at a few invariants and its relative L2 error over the range
the data explore; writes mu.png (learned versus true μ), VTK fields, results.json and
history.csv to DIR (default examples/output/fit_network_cr). Exits non-zero unless the fit
converges with μ within 5% (relative L2) of the truth.
"""
from crk.fit.problems.network_cr import NetworkCRFit
from crk.fit.script import run_example


def passed(compared, result):
    return result.success and compared["mu"]["relative_error"] < 0.05


if __name__ == "__main__":
    run_example(NetworkCRFit, "fit_network_cr", passed=passed)
