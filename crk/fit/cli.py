"""The ``crk-fit`` command (also ``python -m crk.fit``): fit an example problem under mpirun.

    mpirun -n 2 crk-fit p_laplacian --optimizer tao --output out/plap -plap_snes_monitor
    mpirun -n 2 crk-fit --config fit.toml --resume

Arguments after the problem's name: crk-fit's own flags (``--flag``; ``crk-fit PROBLEM -h``
lists the problem's parameters too) and PETSc options (``-name [value]``, a single dash), which
go into PETSc's options database before any solver is made, so they override crk's defaults
(``-plap_ksp_type gmres``, ``-crk_tao_monitor``, ``-options_left``). The problem's name comes
first: a token after a PETSc option that does not start with a dash is taken as its value.

Every rank parses the same arguments and the same config file (read by rank 0 and broadcast),
so a wrong setting gives the same error, naming the key or flag, on every rank, printed once.
Exit status: 0 when the fit converged, 1 when it did not (its results are written anyway), 2
for wrong arguments.
"""
import argparse
import logging
import sys

from .config import ConfigError, load_config, parse_toml
from .problems import PROBLEMS, get_problem

PROG = "crk-fit"

EPILOG = """\
outputs (in --output DIR): results.json (the result, recovered versus true values, settings),
history.csv (one row per iteration), history.png, and the problem's fields as VTK (.pvts,
ParaView) and PNG plots.

examples:
  mpirun -n 2 crk-fit p_laplacian
  mpirun -n 2 crk-fit p_laplacian --optimizer tao --n 64 -crk_tao_monitor
  mpirun -n 2 crk-fit --config fit.toml --checkpoint-file fit.npz --resume
"""


class _Parser(argparse.ArgumentParser):
    """argparse speaking on rank 0 only and raising ConfigError instead of exiting."""

    def __init__(self, *args, rank=0, **kwargs):
        self.rank = rank
        super().__init__(*args, **kwargs)

    def _print_message(self, message, file=None):
        if self.rank == 0:
            super()._print_message(message, file)

    def error(self, message):
        raise ConfigError(message)


def split_petsc_options(argv):
    """(crk-fit's own arguments, PETSc's tokens) of a command line (without the program
    name): ``-name`` (one dash, then a letter) starts a PETSc option; the token after it is its
    value unless it starts with a dash (a negative number is a value)."""
    own, petsc = [], []
    i = 0
    while i < len(argv):
        token = argv[i]
        if _is_petsc_option(token):
            petsc.append(token)
            if i + 1 < len(argv) and _is_value(argv[i + 1]):
                petsc.append(argv[i + 1])
                i += 1
        else:
            own.append(token)
        i += 1
    return own, petsc


def _is_petsc_option(token):
    return (len(token) > 2 and token[0] == "-" and token[1].isalpha()
            and token not in ("-h",))


def _is_value(token):
    if not token.startswith("-"):
        return True
    try:
        float(token)
        return True
    except ValueError:
        return False


def build_parser(problem=None, rank=0, add_help=True):
    """The argument parser; with ``problem`` (a problem class) also its parameters' flags."""
    parser = _Parser(prog=PROG, rank=rank, add_help=add_help,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Fit an example problem of crk under mpirun (scipy in "
                                 "lock-step on every rank, or PETSc TAO).",
                     epilog=EPILOG)
    parser.add_argument("problem", nargs="?", metavar="PROBLEM",
                        help=f"the problem: {', '.join(sorted(PROBLEMS))} (or problem = ... "
                             f"in the config file)")
    parser.add_argument("--config", metavar="FILE", help="a TOML file of settings (flags win)")
    parser.add_argument("--optimizer", help="scipy (default) or tao")
    parser.add_argument("--method", help="the scipy method (default: the problem's, "
                                         "usually L-BFGS-B)")
    parser.add_argument("--tao-type", help="the TAO type (default: the problem's, usually "
                                           "bqnls); -crk_tao_type overrides it")
    parser.add_argument("--max-iterations", type=int, metavar="N",
                        help="iteration limit of the fit")
    parser.add_argument("--output", metavar="DIR", help="output directory (default "
                                                        "fit-output)")
    parser.add_argument("--checkpoint-file", metavar="PATH",
                        help="write the fit's state after every iteration (.npz)")
    parser.add_argument("--resume", action="store_true", default=None,
                        help="continue from --checkpoint-file if it exists")
    parser.add_argument("--quiet", action="store_true", default=None,
                        help="no per-iteration log lines (warnings only)")
    parser.add_argument("--quick", action="store_true", default=None,
                        help="the problem's tiny size (a smoke test)")
    if problem is not None:
        group = parser.add_argument_group(f"parameters of {problem.name} "
                                          f"({problem.description})")
        for key, p in problem.parameters.items():
            flag = "--" + key.replace("_", "-")
            if p.kind is list:
                group.add_argument(flag, dest=f"param_{key}", nargs="+", metavar="X",
                                   help=f"{p.help} (default {' '.join(map(str, p.default))})")
            else:
                group.add_argument(flag, dest=f"param_{key}", metavar=p.kind.__name__.upper(),
                                   help=f"{p.help} (default {p.default})")
    return parser


def _read_config(path, comm):
    """The config file's TOML table, read on rank 0 and broadcast (the same on every rank)."""
    text = error = None
    if comm.rank == 0:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            error = f"--config: cannot read {path!r}: {e.strerror or e}"
    text, error = comm.bcast((text, error), root=0)
    if error is not None:
        raise ConfigError(error)
    return parse_toml(text, path)


def parse(argv, comm):
    """The :class:`~crk.fit.config.FitConfig` of a command line (without the program name), or
    None when help was printed. Raises ConfigError on every rank alike. Collective (a
    broadcast when there is a config file)."""
    own, petsc = split_petsc_options(list(argv))
    first, _ = build_parser(rank=comm.rank, add_help=False).parse_known_args(own)
    file_data, source = {}, "the config file"
    if first.config is not None:
        source = first.config
        file_data = _read_config(first.config, comm)
    name = first.problem if first.problem is not None else file_data.get("problem")
    problem = None
    if isinstance(name, str) and name in PROBLEMS:
        problem = get_problem(name)
    parser = build_parser(problem, rank=comm.rank)
    try:
        args = parser.parse_args(own)
    except SystemExit as e:     # -h: help was printed (on rank 0)
        if e.code in (0, None):
            return None
        raise
    flags = {k: getattr(args, k) for k in ("problem", "optimizer", "method", "tao_type",
                                           "max_iterations", "output", "checkpoint_file",
                                           "resume", "quiet", "quick")}
    flags["parameters"] = {k[len("param_"):]: v for k, v in vars(args).items()
                           if k.startswith("param_") and v is not None}
    flags["petsc_options"] = petsc
    return load_config(file_data, source, flags)


def configure_logging(comm, quiet):
    """Rank 0 logs crk's progress (INFO; WARNING when ``quiet``); other ranks warnings only."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    level = logging.INFO if comm.rank == 0 and not quiet else logging.WARNING
    logging.getLogger("crk").setLevel(level)


def execute(config, comm=None, say=None):
    """Run the fit of ``config`` (a :class:`~crk.fit.config.FitConfig`) over ``comm`` (default
    COMM_WORLD) and write its outputs. Returns (result, comparison): the
    :class:`~crk.optimize.OptimizationResult` and {control: recovered versus true}.
    ``say``: prints rank 0's report lines (default: print on rank 0). Collective."""
    from ..parallel.comm import resolve_comm
    from .run import comparison, fit, recovered_lines, report_outcome, write_outputs
    from solvers.petsc import import_petsc

    comm = resolve_comm(comm)
    if say is None:
        say = print if comm.rank == 0 else (lambda *a, **k: None)
    import_petsc(argv=[PROG] + list(config.petsc_options))
    problem_class = get_problem(config.problem)
    settings = config.scipy if config.optimizer == "scipy" else config.tao
    method = settings.get("method") or settings.get("type")
    say(f"{PROG}: {config.problem} on {comm.size} rank(s), {config.optimizer} ({method}), "
        f"parameters {config.parameters}", flush=True)
    with problem_class(config.parameters, comm=comm) as problem:
        result = fit(problem, config.optimizer, settings=settings,
                     checkpoint_file=config.checkpoint_file, resume=config.resume,
                     quiet=config.quiet)
        compared = comparison(problem, result)
        write_outputs(problem, result, config.output, config=config.as_dict())
        report_outcome(result, config.quiet, say)
        for line in recovered_lines(problem, result):
            say(line)
    say(f"{PROG}: results in {config.output}/ (results.json, history.csv, *.png, *.pvts)",
        flush=True)
    return result, compared


def run(argv=None, comm=None):
    """Parse ``argv`` (default ``sys.argv[1:]``), run the fit, return the exit status (0
    converged, 1 not converged, 2 wrong arguments). Collective over ``comm``."""
    from ..parallel.comm import resolve_comm
    comm = resolve_comm(comm)
    argv = sys.argv[1:] if argv is None else argv
    try:
        config = parse(argv, comm)
    except ConfigError as e:
        if comm.rank == 0:
            print(f"{PROG}: error: {e}\n(see {PROG} -h, or {PROG} PROBLEM -h for the "
                  f"problem's parameters)", file=sys.stderr, flush=True)
        return 2
    if config is None:
        return 0
    configure_logging(comm, config.quiet)
    result, _ = execute(config, comm)
    return 0 if result.success else 1


def main(argv=None):
    """The console script: an uncaught exception on any rank ends the whole job (see
    :func:`crk.parallel.abort_on_uncaught_exception`); exits with :func:`run`'s status."""
    from mpi4py import MPI

    from ..parallel import abort_on_uncaught_exception
    abort_on_uncaught_exception(MPI.COMM_WORLD)
    sys.exit(run(argv, comm=MPI.COMM_WORLD))
