"""The body of the example scripts in ``examples/``: parse ``--n``/``--quick``/``--output``/
``--quiet`` and PETSc options, build a problem, fit it with one or more optimisers, print what
each recovered next to the truth, write its outputs, exit non-zero unless every fit passed."""
import argparse
import os
import sys


def run_example(problem_class, name, optimizers=("scipy",), passed=None, size_flag="n",
                argv=None):
    """Run the example ``name`` (its outputs default to examples/output/NAME) on COMM_WORLD.

    ``optimizers``: "scipy" and/or "tao", fitted one after the other from the same start.
    ``passed(comparison, result)``: whether one fit counts as passed (default: converged).
    ``size_flag``: the problem parameter ``--n`` sets. Exits with status 0 when every fit
    passed, 1 otherwise. Collective.
    """
    from mpi4py import MPI

    from ..parallel import abort_on_uncaught_exception
    from .cli import configure_logging, split_petsc_options
    from .run import comparison, fit, recovered_lines, report_outcome, write_outputs
    from solvers.petsc import import_petsc

    argv = sys.argv if argv is None else argv
    own, petsc_options = split_petsc_options(argv[1:])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(prog=f"{name}.py",
                                     description=problem_class.description)
    parser.add_argument("--n", type=int, help=f"{problem_class.parameters[size_flag].help} "
                                              f"(default {problem_class.parameters[size_flag].default})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a tiny run: {problem_class.quick}")
    parser.add_argument("--output", default=os.path.join(root, "examples", "output", name),
                        help="output directory (default examples/output/%(prog)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    args = parser.parse_args(own)
    comm = MPI.COMM_WORLD
    abort_on_uncaught_exception(comm)
    import_petsc(argv=[argv[0]] + petsc_options)     # before any solver is made
    configure_logging(comm, args.quiet)
    say = print if comm.rank == 0 else (lambda *a, **k: None)

    settings = dict(problem_class.quick) if args.quick else {}
    if args.n is not None:
        settings[size_flag] = args.n
    ok = True
    with problem_class(settings, comm=comm) as problem:
        say(f"{name} on {comm.size} rank(s): {problem_class.description}; "
            f"parameters {problem.settings}", flush=True)
        for optimizer in optimizers:
            result = fit(problem, optimizer, quiet=args.quiet)
            directory = (args.output if len(optimizers) == 1
                         else os.path.join(args.output, optimizer))
            write_outputs(problem, result, directory)
            report_outcome(result, args.quiet, say)
            for line in recovered_lines(problem, result):
                say(f"{optimizer}: {line}")
            good = result.success if passed is None else passed(comparison(problem, result),
                                                                 result)
            ok = ok and good
    say(f"outputs in {args.output}")
    say(f"{name} " + ("passed" if ok else "FAILED"), flush=True)
    sys.exit(0 if ok else 1)
