"""Identify the Neo-Hookean moduli (μ, λ) of a 3D block from sparse displacement sensors and the
reaction force, by Newton trust-region methods using Hessian actions.

    mpirun -n 2 python examples/fit_hyperelastic.py [--n 4] [--quick] [--output DIR] [PETSc options]

The problem is :class:`crk.fit.problems.hyperelastic.HyperelasticFit` (also ``crk-fit
hyperelastic``): a block clamped at one end and stretched 10% in load steps; every evaluation is
a Newton solve of the Neo-Hookean equilibrium, every Hessian action a tangent-linear and a
second-order adjoint solve. Fitted twice from the same start: scipy trust-ncg (through
crk.optimize.scipy_minimize, Hessian actions as ``hessp``) and TAO nls (a shell Hessian on
``rf.hessian``). Prints the recovered moduli next to the truth; writes sensors.png (fitted
against observed sensor values), VTK fields, results.json and history.csv per optimiser to DIR
(default examples/output/fit_hyperelastic). Exits non-zero unless both fits converge with μ and λ
within 2% of the truth.
"""
from crk.fit.problems.hyperelastic import HyperelasticFit
from crk.fit.script import run_example


def passed(compared, result):
    return result.success and all(compared[name]["relative_error"] < 0.02
                                  for name in ("mu", "lam"))


if __name__ == "__main__":
    run_example(HyperelasticFit, "fit_hyperelastic", optimizers=("scipy", "tao"), passed=passed)
