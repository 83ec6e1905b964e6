"""Recover the exponent p and the flux scale k of a p-Laplacian from noisy observations of u,
with scipy's L-BFGS-B (in lock-step on every rank) and with PETSc TAO (bqnls).

    mpirun -n 2 python examples/fit_p_laplacian.py [--n 32] [--quick] [--output DIR] [-plap_snes_monitor ...]

The problem — the flux q = k (ε² + |∇u|²)^((p−2)/2) ∇u as a JAX point map, Newton solves on the
unit square under two loadings, noisy nodal observations, the relative L2 misfit — is
:class:`crk.fit.problems.p_laplacian.PLaplacianFit`, the same that ``crk-fit p_laplacian`` runs.
Prints what each optimiser recovered next to the truth and writes results.json, history.csv,
PNG plots and VTK fields to ``DIR/scipy`` and ``DIR/tao`` (default examples/output/
fit_p_laplacian). Exits non-zero unless both fits converge with p within 1% of the truth.
Every rank count gives the same numbers (to round-off).
"""
import argparse
import os
import sys

from mpi4py import MPI

import crk
from crk.fit import fit, recovered_lines, write_outputs
from crk.fit.cli import configure_logging, split_petsc_options
from crk.fit.problems.p_laplacian import PLaplacianFit
from crk.fit.run import comparison, summary_line
from solvers.petsc import import_petsc

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output", "fit_p_laplacian")


def main():
    own, petsc_options = split_petsc_options(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, help="cells per axis (default 32)")
    parser.add_argument("--quick", action="store_true", help="a tiny mesh (8 x 8)")
    parser.add_argument("--output", default=OUTPUT, help="output directory")
    parser.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    args = parser.parse_args(own)
    comm = MPI.COMM_WORLD
    crk.parallel.abort_on_uncaught_exception(comm)
    import_petsc(argv=[sys.argv[0]] + petsc_options)     # before any solver is made
    configure_logging(comm, args.quiet)
    say = print if comm.rank == 0 else (lambda *a, **k: None)

    settings = dict(PLaplacianFit.quick) if args.quick else {}
    if args.n is not None:
        settings["n"] = args.n
    ok = True
    with PLaplacianFit(settings, comm=comm) as problem:
        say(f"p-Laplacian fit on {comm.size} rank(s), {problem.settings['n']}^2 cells, "
            f"loadings {problem.loads}, {problem.settings['noise']:.0%} noise", flush=True)
        for optimizer in ("scipy", "tao"):
            result = fit(problem, optimizer, quiet=args.quiet)
            write_outputs(problem, result, os.path.join(args.output, optimizer))
            say(summary_line(result))
            for line in recovered_lines(problem, result):
                say(f"{optimizer}: {line}")
            p = comparison(problem, result)["p"]
            ok = ok and result.success and p["relative_error"] < 0.01
    say(f"outputs in {args.output}")
    say("fit_p_laplacian " + ("passed" if ok else "FAILED"), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
