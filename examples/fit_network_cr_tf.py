"""Learn the neural-network constitutive relation of fit_network_cr.py, q = μ(|∇u|²; w) ∇u, with a
Keras network through crk's TensorFlow backend.

    mpirun -n 2 python examples/fit_network_cr_tf.py [--n 16] [--quick] [--output DIR]
                                                     [PETSc options]

The problem is :class:`crk.fit.problems.network_cr_tf.NetworkCRTFFit` (also ``crk-fit
network_cr_tf``): the same data, loadings and misfit as the JAX example; μ is a Keras Sequential
MLP with float64 layers (a per-layer dtype, Keras' global settings untouched), its weights one
replicated control fitted by L-BFGS-B in lock-step on every rank. Prints the learned μ next to
the true one at a few invariants and its relative L2 error; writes mu.png, VTK fields,
results.json and history.csv to DIR (default examples/output/fit_network_cr_tf). Exits
non-zero unless the fit converges with μ within 5% (relative L2) of the truth.
"""
from crk.fit.problems.network_cr_tf import NetworkCRTFFit
from crk.fit.script import run_example


def passed(compared, result):
    return result.success and compared["mu"]["relative_error"] < 0.05


if __name__ == "__main__":
    run_example(NetworkCRTFFit, "fit_network_cr_tf", passed=passed)
