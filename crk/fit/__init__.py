"""Parameter fits run from the command line: the ``crk-fit`` driver (also ``python -m crk.fit``)
and the example problems it runs.

The parts:

``example.py``
    :class:`ExampleProblem`, what a fit problem provides (a reduced functional, bounds, the
    truth to compare with, outputs) and :class:`Parameter`, one of its settings.
``problems/``
    the named problems (:data:`crk.fit.problems.PROBLEMS`), one module each; the scripts in
    ``examples/`` build the same problems.
``config.py``
    a fit's settings from defaults, a TOML file and flags, each checked with an error that
    names the key or flag.
``run.py``
    running a fit (scipy or TAO) and writing results.json, history.csv, PNG and VTK files.
``cli.py``
    the command line: argument parsing, PETSc options, logging, exit codes.

Importing this package imports neither MPI, PETSc nor an AD backend. Everything that runs a fit
is collective over its ``comm`` (default COMM_WORLD).
"""
from .config import ConfigError, FitConfig, load_config
from .example import ExampleProblem, Parameter
from .problems import PROBLEMS, get_problem
from .run import fit, recovered_lines, write_outputs

__all__ = ["ConfigError", "ExampleProblem", "FitConfig", "PROBLEMS", "Parameter", "fit",
           "get_problem", "load_config", "recovered_lines", "write_outputs"]
