"""Importing petsc4py the one way crk does it: :func:`import_petsc`.

Two things go wrong with a bare ``from petsc4py import PETSc``:

* the first import initialises PETSc with ``sys.argv``, so a script's or pytest's
  own command-line arguments get parsed as PETSc options. ``import_petsc`` calls
  ``petsc4py.init([])`` first (unless PETSc is already initialised, in which case
  whoever did it chose the options);
* petsc4py is a compiled wrapper of one PETSc release. Built against another
  release it fails to import or misbehaves, with errors that do not say so.
  ``import_petsc`` checks that the two agree in major.minor and otherwise raises
  an ImportError that names both versions and the fix.

Nothing here runs at import time: importing this module imports neither
petsc4py nor mpi4py.
"""

import importlib.metadata
import re
import shlex
import sys

__all__ = ["import_petsc"]

# The release the project builds and tests (scripts/install.sh pins the same).
TESTED_PETSC_VERSION = "3.26.1"

_MATCHING_PAIR = (
    "a matching pair with `make install` in the crk repository (it builds PETSc and petsc4py "
    "from source, see README.md, 'Set-up'), or by hand in an environment with MPI compilers "
    "on PATH and a BLAS/LAPACK:\n"
    "    pip install --no-build-isolation petsc=={version} && "
    "pip install --no-build-isolation petsc4py=={version}\n"
    "or with conda:\n"
    "    conda install -c conda-forge petsc={minor} petsc4py={minor}"
)

NOT_INSTALLED = (
    "crk's PETSc solvers (package `solvers`) need petsc4py, which is not installed.\n"
    "Install " + _MATCHING_PAIR
)

LOAD_FAILED = (
    "petsc4py {petsc4py_version} is installed but could not load PETSc "
    "(pip-installed PETSc: {petsc_version}): {error}\n"
    "petsc4py must be built against the PETSc it loads. Rebuild it:\n"
    "    pip install --no-build-isolation --force-reinstall --no-deps petsc4py=={version}\n"
    "or reinstall " + _MATCHING_PAIR
)

VERSION_MISMATCH = (
    "petsc4py {petsc4py_version} was loaded with the PETSc library {library_version}; "
    "they must agree in major.minor version.\n"
    "Rebuild petsc4py against this PETSc:\n"
    "    pip install --no-build-isolation --force-reinstall --no-deps petsc4py=={library_version}\n"
    "or reinstall " + _MATCHING_PAIR
)


def _major_minor(version):
    """(major, minor) of a version string such as '3.26.1', or None."""
    match = re.match(r"(\d+)\.(\d+)", str(version))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _distribution_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _format(template, version, **fields):
    minor = ".".join(map(str, _major_minor(version) or ("X", "Y")))
    return template.format(version=version, minor=minor, **fields)


def import_petsc(argv=None):
    """Return the ``petsc4py.PETSc`` module, initialised, with its versions checked.

    PETSc is initialised without command-line options if nothing has initialised
    it yet. ``argv``: a command line (``sys.argv`` in a script) whose PETSc options
    (``-snes_monitor``, ``-plap_ksp_type gmres``, ``-options_left``, ...) go into
    PETSc's options database: given at initialisation, or inserted afterwards when
    PETSc is already running. Options only count where a solver reads them, i.e.
    for solvers created after this call (crk's solvers call ``setFromOptions`` when
    they are made). ``argv[0]`` is the program name and is skipped. Not collective,
    but every rank should pass the same ``argv``.

    Raises ImportError, naming the versions found and the fix, when petsc4py is
    missing, cannot load PETSc, or was built for another PETSc release.
    """
    try:
        import petsc4py
    except ImportError as exc:
        raise ImportError(_format(NOT_INSTALLED, TESTED_PETSC_VERSION)) from exc

    petsc_version = _distribution_version("petsc")
    try:
        # The first import of petsc4py.PETSc initialises PETSc; with sys.argv unless
        # init() was called first.
        fresh = "petsc4py.PETSc" not in sys.modules
        if fresh:
            petsc4py.init(list(argv) if argv else [])
        from petsc4py import PETSc
    except ImportError as exc:
        raise ImportError(
            _format(
                LOAD_FAILED,
                petsc_version or petsc4py.__version__,
                petsc4py_version=petsc4py.__version__,
                petsc_version=petsc_version or "none",
                error=exc,
            )
        ) from exc

    library_version = ".".join(map(str, PETSc.Sys.getVersion()))
    if _major_minor(library_version) != _major_minor(petsc4py.__version__):
        raise ImportError(
            _format(
                VERSION_MISMATCH,
                library_version,
                petsc4py_version=petsc4py.__version__,
                library_version=library_version,
            )
        )
    if argv and not fresh and len(argv) > 1:
        PETSc.Options().insertString(shlex.join(str(a) for a in argv[1:]))
    return PETSc
