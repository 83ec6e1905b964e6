"""Recover a distributed source field f of the nonlinear heat equation
u_t − div((1 + u²) ∇u) = f from observations of u at a few times.

    mpirun -n 2 python examples/transient_source_inversion.py [--n 100] [--quick] [--output DIR]
                                                              [PETSc options]

The problem is :class:`crk.fit.problems.transient_source.TransientSourceFit` (also ``crk-fit
transient_source``): one unknown per node (101² = 10201 at the default size, distributed over
the ranks), implicit Euler steps recorded under Revolve checkpointing, an H1 regularisation, and
TAO bqnls with f ≥ 0 whose gradient norm and initial Hessian are the regularisation's Riesz map.
Prints the relative L2 error of the recovered source against the truth; writes f_fit.png,
f_true.png, VTK fields, results.json and history.csv to DIR (default
examples/output/transient_source_inversion). Exits non-zero unless the fit converges with the
source within 20% (relative l2) of the truth (the noise and the regularisation bound what is
recoverable).
"""
from crk.fit.problems.transient_source import TransientSourceFit
from crk.fit.script import run_example


def passed(compared, result):
    return result.success and compared["f"]["relative_error"] < 0.2


if __name__ == "__main__":
    run_example(TransientSourceFit, "transient_source_inversion", optimizers=("tao",),
                passed=passed)
